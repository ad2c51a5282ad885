//! The text codec of the 110-byte SVR4 header, and the rules for entry names.
//!
//! A header is the 6-byte magic followed by 13 fields of 8 ASCII hex digits, in this order:
//! `ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check`
//! (libarchive `cpio(5)`, "New ASCII Format").

use super::{ErrorKind, Format, Header, PATH_MAX, TRAILER};

/// The length of the magic.
pub(super) const MAGIC_LEN: usize = 6;

/// The number of hex fields.
const FIELD_COUNT: usize = 13;

/// The length of one hex field.
const FIELD_LEN: usize = 8;

/// The length of the fields after the magic.
pub(super) const FIELDS_LEN: usize = FIELD_COUNT * FIELD_LEN;

/// The length of a whole header.
pub(super) const HEADER_LEN: usize = MAGIC_LEN + FIELDS_LEN;

const _: () = assert!(HEADER_LEN == 110);

/// The field names in archive order, as they appear in error messages.
const FIELD_NAMES: [&str; FIELD_COUNT] = [
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
];

/// The 2-byte magic of the old binary format (`070707` octal), in little-endian order.
const BINARY_MAGIC_LE: [u8; 2] = [0xc7, 0x71];

/// The 2-byte magic of the old binary format, in big-endian order.
const BINARY_MAGIC_BE: [u8; 2] = [0x71, 0xc7];

/// Recognizes the format from the first 6 bytes of a header.
pub(super) fn decode_magic(magic: &[u8; MAGIC_LEN]) -> Result<Format, ErrorKind> {
    match magic {
        b"070701" => Ok(Format::Newc),
        b"070702" => Ok(Format::Crc),
        b"070707" => Err(ErrorKind::UnsupportedFormat { format: "odc (magic \"070707\")" }),
        [a, b, ..] if [*a, *b] == BINARY_MAGIC_LE => {
            Err(ErrorKind::UnsupportedFormat { format: "old binary, little-endian (0x71c7)" })
        }
        [a, b, ..] if [*a, *b] == BINARY_MAGIC_BE => {
            Err(ErrorKind::UnsupportedFormat { format: "old binary, big-endian (0x71c7)" })
        }
        _ => Err(ErrorKind::BadMagic { found: *magic }),
    }
}

/// Decodes the 13 hex fields into a header without its name, and the `namesize` field.
pub(super) fn decode_fields(bytes: &[u8; FIELDS_LEN]) -> Result<(Header, u32), ErrorKind> {
    let mut values = [0u32; FIELD_COUNT];
    for ((value, text), field) in
        values.iter_mut().zip(bytes.chunks_exact(FIELD_LEN)).zip(FIELD_NAMES)
    {
        *value = decode_hex(field, text)?;
    }
    let [
        ino,
        mode,
        uid,
        gid,
        nlink,
        mtime,
        file_size,
        dev_major,
        dev_minor,
        rdev_major,
        rdev_minor,
        namesize,
        check,
    ] = values;
    let header = Header {
        name: String::new(),
        ino,
        mode,
        uid,
        gid,
        nlink,
        mtime,
        file_size,
        dev_major,
        dev_minor,
        rdev_major,
        rdev_minor,
        check,
    };
    Ok((header, namesize))
}

/// Decodes one field of exactly 8 hex digits of either case; signs and spaces are rejected.
fn decode_hex(field: &'static str, text: &[u8]) -> Result<u32, ErrorKind> {
    let bad = || ErrorKind::BadHexField { field, found: text.escape_ascii().to_string() };
    if text.len() != FIELD_LEN {
        return Err(bad());
    }
    let mut value = 0u32;
    for &byte in text {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            b'A'..=b'F' => byte - b'A' + 10,
            _ => return Err(bad()),
        };
        // Eight digits of four bits fill the 32 bits exactly, so no bit is shifted out.
        value = (value << 4) | u32::from(digit);
    }
    Ok(value)
}

/// Encodes a header with the given `namesize`; the name itself follows it separately.
pub(super) fn encode(format: Format, header: &Header, namesize: u32) -> [u8; HEADER_LEN] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let values = [
        header.ino,
        header.mode,
        header.uid,
        header.gid,
        header.nlink,
        header.mtime,
        header.file_size,
        header.dev_major,
        header.dev_minor,
        header.rdev_major,
        header.rdev_minor,
        namesize,
        header.check,
    ];
    let mut out = [0u8; HEADER_LEN];
    let (magic, fields) = out.split_at_mut(MAGIC_LEN);
    magic.copy_from_slice(format.magic());
    for (text, value) in fields.chunks_exact_mut(FIELD_LEN).zip(values) {
        for (position, byte) in text.iter_mut().enumerate() {
            let shift = 4 * (FIELD_LEN - 1 - position);
            *byte = DIGITS[((value >> shift) & 0xf) as usize];
        }
    }
    out
}

/// What the raw name of an entry turned out to be.
pub(super) enum Name {
    /// The trailer, which ends the archive.
    Trailer,
    /// An entry's path, normalized.
    Path(String),
}

/// Checks the raw name bytes (with their NUL) read from an archive, and normalizes the path.
///
/// On error, also returns the name if it was valid UTF-8, for the error report.
pub(super) fn decode_name(raw: Vec<u8>) -> Result<Name, (ErrorKind, Option<String>)> {
    let Some((&last, name)) = raw.split_last() else {
        return Err((ErrorKind::NameSizeZero, None));
    };
    if last != 0 {
        return Err((ErrorKind::NameNotNulTerminated, None));
    }
    if let Some(position) = name.iter().position(|&byte| byte == 0) {
        return Err((ErrorKind::NameHasNul { position }, None));
    }
    let name = match std::str::from_utf8(name) {
        Ok(name) => name,
        Err(source) => return Err((ErrorKind::NameNotUtf8 { source }, None)),
    };
    if name == TRAILER {
        return Ok(Name::Trailer);
    }
    let normalized = match name.strip_prefix("./") {
        Some(rest) => rest,
        None => name,
    };
    match validate_path(normalized) {
        Ok(()) => Ok(Name::Path(normalized.to_owned())),
        Err(kind) => Err((kind, Some(name.to_owned()))),
    }
}

/// Checks a normalized path: the root `.`, or relative components that are not empty, `.` or `..`.
///
/// The reader applies it after stripping a leading `./`; the writer applies it as is, so it only
/// writes normalized names.
pub(super) fn validate_path(name: &str) -> Result<(), ErrorKind> {
    if name.len() > PATH_MAX {
        return Err(ErrorKind::NameTooLong { size: name.len() as u64 + 1 });
    }
    if let Some(position) = name.bytes().position(|byte| byte == 0) {
        return Err(ErrorKind::NameHasNul { position });
    }
    if name == "." {
        return Ok(());
    }
    if name.is_empty() {
        return Err(ErrorKind::EmptyName);
    }
    if name.starts_with('/') {
        return Err(ErrorKind::AbsolutePath);
    }
    if name == TRAILER {
        return Err(ErrorKind::ReservedName);
    }
    for component in name.split('/') {
        match component {
            "" => return Err(ErrorKind::EmptyComponent),
            "." => return Err(ErrorKind::DotComponent),
            ".." => return Err(ErrorKind::DotDotComponent),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a symlink target read from an archive or given to the writer.
pub(super) fn decode_symlink_target(target: Vec<u8>) -> Result<String, ErrorKind> {
    if target.is_empty() || target.len() > PATH_MAX {
        return Err(ErrorKind::SymlinkTargetSize {
            size: u32::try_from(target.len()).unwrap_or(u32::MAX),
        });
    }
    if let Some(position) = target.iter().position(|&byte| byte == 0) {
        return Err(ErrorKind::SymlinkTargetHasNul { position });
    }
    String::from_utf8(target)
        .map_err(|err| ErrorKind::SymlinkTargetNotUtf8 { source: err.utf8_error() })
}
