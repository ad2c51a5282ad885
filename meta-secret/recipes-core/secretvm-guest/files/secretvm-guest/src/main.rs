//! `secretvm-guest`: the in-guest half of the secretvm measurements, for the initramfs.
//!
//! Linux 6.16 and later expose a TD's measurement registers in sysfs, one file per register
//! under `/sys/devices/virtual/misc/tdx_guest/measurements/` (the kernel's ABI document
//! `sysfs-devices-virtual-misc-tdx_guest`): reading `rtmr<N>:sha384` gives RTMR N, and one
//! write of exactly 48 bytes at offset 0 extends it (TDG.MR.RTMR.EXTEND, so the register
//! becomes SHA-384 of its old value followed by those 48 bytes); any other write is refused
//! with `EINVAL`.
//!
//! ```text
//! secretvm-guest extend-rtmr <INDEX> <DIGEST> [--measurements DIR]
//! secretvm-guest show-mrs [--measurements DIR]
//! secretvm-guest pin-os-image <DEVICE> <NAME> <FS_BLOCK>
//! ```
//!
//! `extend-rtmr` takes a sha256 (64 hex digits), which it zero-pads to 48 bytes as
//! `attest-tool extendrt` does on the TDX image, so `secretvm measure rtmr3` predicts the
//! result either way; or a full 48-byte value (96 hex digits), written as it is. It then prints
//! the register's new value. `show-mrs` prints every register of the directory, one
//! `name hex` line each. `--measurements` exists for tests; the initramfs never passes it.
//!
//! `pin-os-image` reads the OS image on block device `DEVICE` once, prints its sha256 (64 hex
//! digits), and maps it through a dm-verity tree of the bytes it read, kept in guest memory,
//! as `/dev/mapper/<NAME>` (see [`pin`]); `FS_BLOCK` is the block size of the image's file
//! system. It needs device-mapper with dm-verity, the loop device and memfd in the kernel.
//!
//! Exit status: 0 done, 1 the kernel refused or a file could not be used, 2 a usage error.
//! Its one dependency is `sha2` (with what that needs), which the Yocto recipe fetches by
//! checksum from `secretvm-guest-crates.inc` and builds offline.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod pin;
mod sys;
mod verity;

/// Where Linux (6.16 and later) puts a TD's measurement registers.
const MEASUREMENTS: &str = "/sys/devices/virtual/misc/tdx_guest/measurements";

/// The size of a TDX RTMR, and of every extend.
const RTMR_SIZE: usize = 48;

/// The largest register file read by `show-mrs` (TDX's are 48 bytes; others up to SHA-512).
const MAX_REGISTER: u64 = 64;

const USAGE: &str = "usage: secretvm-guest extend-rtmr <INDEX 0-3> <DIGEST: 64 or 96 hex digits> [--measurements DIR]
       secretvm-guest show-mrs [--measurements DIR]
       secretvm-guest pin-os-image <DEVICE> <NAME> <FS_BLOCK>";

/// What went wrong, with what the message needs to say which file and why.
#[derive(Debug)]
enum Error {
    /// The command line is wrong; the message says how.
    Usage(String),
    /// The register directory does not exist: no TDX measurement registers in sysfs.
    NoRegister(PathBuf),
    /// The directory exists but has no register of that name.
    UnknownRegister(PathBuf),
    /// The kernel refused the extend (or the file could not be opened for writing).
    Extend { path: PathBuf, source: io::Error },
    /// The kernel accepted fewer bytes than one whole extend.
    ShortWrite { path: PathBuf, written: usize },
    /// A register or the directory could not be read.
    Read { path: PathBuf, source: io::Error },
    /// A register file is larger than any measurement register.
    TooLarge { path: PathBuf },
    /// The OS image on `device` could not be pinned; the message says at which step and why.
    Pin { device: PathBuf, message: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) => write!(f, "{message}\n{USAGE}"),
            Error::NoRegister(path) => write!(
                f,
                "{} does not exist: this kernel exposes no TDX measurement registers \
                 (they need Linux 6.16 or later with CONFIG_TDX_GUEST_DRIVER, running in a TD)",
                path.display()
            ),
            Error::UnknownRegister(path) => write!(
                f,
                "{} does not exist, though its directory does: the kernel has no such register",
                path.display()
            ),
            Error::Extend { path, source } => {
                write!(f, "the kernel refused to extend {}: {source}", path.display())
            }
            Error::ShortWrite { path, written } => write!(
                f,
                "the kernel took {written} of the {RTMR_SIZE} bytes written to {}; \
                 an extend must be one whole write",
                path.display()
            ),
            Error::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::TooLarge { path } => write!(
                f,
                "{} holds more than {MAX_REGISTER} bytes: not a measurement register",
                path.display()
            ),
            Error::Pin { device, message } => {
                write!(f, "cannot pin the OS image {}: {message}", device.display())
            }
        }
    }
}

/// The RTMR index, 0 to 3.
fn parse_index(text: &str) -> Result<u8, Error> {
    match text {
        "0" => Ok(0),
        "1" => Ok(1),
        "2" => Ok(2),
        "3" => Ok(3),
        _ => Err(Error::Usage(format!("the RTMR index is {text:?}, expected 0, 1, 2 or 3"))),
    }
}

/// The 48 bytes to extend with: a sha256 (64 hex digits) zero-padded, or 96 hex digits as
/// they are. Anything else is refused rather than truncated or padded.
fn parse_digest(text: &str) -> Result<[u8; RTMR_SIZE], Error> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 && bytes.len() != 2 * RTMR_SIZE {
        return Err(Error::Usage(format!(
            "the digest has {} characters, expected 64 hex digits (a sha256, zero-padded to \
             48 bytes) or 96 (48 bytes)",
            bytes.len()
        )));
    }
    let mut out = [0u8; RTMR_SIZE];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let (Some(high), Some(low)) = (hex_value(pair[0]), hex_value(pair[1])) else {
            let at = if hex_value(pair[0]).is_none() { 2 * i } else { 2 * i + 1 };
            return Err(Error::Usage(format!(
                "the digest has {:?} at character {}, expected a hex digit",
                char::from(bytes[at]),
                at + 1
            )));
        };
        out[i] = high << 4 | low;
    }
    Ok(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// The file of RTMR `index` in `dir`.
fn rtmr_path(dir: &Path, index: u8) -> PathBuf {
    dir.join(format!("rtmr{index}:sha384"))
}

/// Extends RTMR `index` with `data` in one write at offset 0, and returns the register's value
/// read back afterwards.
fn extend(dir: &Path, index: u8, data: &[u8; RTMR_SIZE]) -> Result<Vec<u8>, Error> {
    let path = rtmr_path(dir, index);
    // Never create: a missing register must fail, not leave a regular file behind.
    let mut file = fs::OpenOptions::new().write(true).open(&path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound && dir.is_dir() {
            Error::UnknownRegister(path.clone())
        } else if source.kind() == io::ErrorKind::NotFound {
            Error::NoRegister(path.clone())
        } else {
            Error::Extend { path: path.clone(), source }
        }
    })?;
    // One write() call: the kernel extends once per write and refuses partial ones, so this is
    // not write_all, which would retry a short write with the remaining bytes.
    match file.write(data) {
        Ok(RTMR_SIZE) => {}
        Ok(written) => return Err(Error::ShortWrite { path, written }),
        Err(source) => return Err(Error::Extend { path, source }),
    }
    drop(file);
    read_register(&path)
}

/// Reads one register file whole (sysfs may hand it over in pieces).
fn read_register(path: &Path) -> Result<Vec<u8>, Error> {
    let file = fs::File::open(path).map_err(|source| Error::Read { path: path.into(), source })?;
    let mut value = Vec::new();
    file.take(MAX_REGISTER + 1)
        .read_to_end(&mut value)
        .map_err(|source| Error::Read { path: path.into(), source })?;
    if value.len() as u64 > MAX_REGISTER {
        return Err(Error::TooLarge { path: path.into() });
    }
    Ok(value)
}

/// Every readable register of `dir` as (file name, value), by name.
fn registers(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let entries = fs::read_dir(dir).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            Error::NoRegister(dir.into())
        } else {
            Error::Read { path: dir.into(), source }
        }
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read { path: dir.into(), source })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, read_register(&entry.path())?));
    }
    out.sort();
    Ok(out)
}

/// The command line after the program name: the positional words, and `--measurements DIR`.
fn split_args(args: &[String]) -> Result<(Vec<&str>, Option<PathBuf>), Error> {
    let mut words = Vec::new();
    let mut dir = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--measurements" {
            let Some(value) = rest.next() else {
                return Err(Error::Usage("--measurements needs a directory".into()));
            };
            if dir.replace(PathBuf::from(value)).is_some() {
                return Err(Error::Usage("--measurements is given twice".into()));
            }
        } else if arg.starts_with('-') && arg != "-" {
            return Err(Error::Usage(format!("unknown option {arg:?}")));
        } else {
            words.push(arg.as_str());
        }
    }
    Ok((words, dir))
}

/// Runs one command and returns the lines to print.
fn run(args: &[String]) -> Result<Vec<String>, Error> {
    let (words, dir) = split_args(args)?;
    if let ["pin-os-image", device, name, fs_block] = words.as_slice() {
        if dir.is_some() {
            return Err(Error::Usage("--measurements does not apply to pin-os-image".into()));
        }
        let fs_block = pin::parse_fs_block(fs_block)?;
        let sha256 = pin::pin(Path::new(device), name, fs_block)?;
        return Ok(vec![hex(&sha256)]);
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(MEASUREMENTS));
    match words.as_slice() {
        ["extend-rtmr", index, digest] => {
            let index = parse_index(index)?;
            let data = parse_digest(digest)?;
            let value = extend(&dir, index, &data)?;
            Ok(vec![format!(
                "extended rtmr{index}:sha384 with {}; it is now {}",
                hex(&data),
                hex(&value)
            )])
        }
        ["show-mrs"] => Ok(registers(&dir)?
            .into_iter()
            .map(|(name, value)| format!("{name} {}", hex(&value)))
            .collect()),
        ["extend-rtmr", ..] => Err(Error::Usage("extend-rtmr takes an index and a digest".into())),
        ["pin-os-image", ..] => Err(Error::Usage(
            "pin-os-image takes a device, a device-mapper name and a file system block size".into(),
        )),
        [] => Err(Error::Usage("no command given".into())),
        [command, ..] => Err(Error::Usage(format!("unknown command or arguments: {command:?}"))),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(lines) => {
            let mut out = io::stdout().lock();
            for line in lines {
                if writeln!(out, "{line}").is_err() {
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            let code = if matches!(error, Error::Usage(_)) { 2 } else { 1 };
            // Nothing else can be done if stderr is gone.
            let _ = writeln!(io::stderr(), "secretvm-guest: error: {error}");
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod pin_tests;
#[cfg(test)]
mod tests;
