//! Tests on stand-in register directories: regular files in a fresh temporary directory, and
//! `/dev/full` for a register whose every write fails. What the real kernel does with the
//! write is checked by the QEMU run described in meta-secret's README (the kernel's own tsm-mr
//! code under a Debian kernel).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A new empty directory under the system's temporary directory.
pub(crate) fn scratch() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "secretvm-guest-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

const SHA256_HEX: &str = "0123456789abcdefFEDCBA98765432100011223344556677c8d9eafb0c1d2e3f";
const SHA256_BYTES: [u8; 32] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0xc8, 0xd9, 0xea, 0xfb, 0x0c, 0x1d, 0x2e, 0x3f,
];

#[test]
fn a_sha256_is_zero_padded_to_48_bytes() {
    let data = parse_digest(SHA256_HEX).unwrap();
    assert_eq!(&data[..32], &SHA256_BYTES);
    assert_eq!(&data[32..], &[0u8; 16]);
}

#[test]
fn a_48_byte_value_is_taken_as_it_is() {
    let text = format!("{SHA256_HEX}{}", &SHA256_HEX[..32]);
    let data = parse_digest(&text).unwrap();
    assert_eq!(&data[..32], &SHA256_BYTES);
    assert_eq!(&data[32..], &SHA256_BYTES[..16]);
}

#[test]
fn other_lengths_and_non_hex_digits_are_refused() {
    for text in ["", "0", &SHA256_HEX[..63], &format!("{SHA256_HEX}0"), &SHA256_HEX.repeat(2)] {
        let Err(Error::Usage(message)) = parse_digest(text) else {
            panic!("{text:?} was accepted");
        };
        assert!(message.contains(&format!("has {} characters", text.len())), "{message}");
    }
    let mut bad = SHA256_HEX.to_owned();
    bad.replace_range(9..10, "g");
    let Err(Error::Usage(message)) = parse_digest(&bad) else { panic!("accepted {bad}") };
    assert!(message.contains("'g' at character 10"), "{message}");
    // A sign, a space or a 0x prefix is not a hex digit either.
    for bad in [format!("+{}", &SHA256_HEX[1..]), format!("0x{}", &SHA256_HEX[2..])] {
        assert!(parse_digest(&bad).is_err(), "{bad}");
    }
}

#[test]
fn only_rtmr_0_to_3_exist() {
    for good in ["0", "1", "2", "3"] {
        assert_eq!(parse_index(good).unwrap().to_string(), good);
    }
    for bad in ["4", "-1", "03", "", "three", "3 "] {
        assert!(matches!(parse_index(bad), Err(Error::Usage(_))), "{bad:?}");
    }
}

#[test]
fn extend_writes_the_48_bytes_once_at_offset_0_and_reads_the_register_back() {
    let dir = scratch();
    let register = dir.join("rtmr3:sha384");
    // A stand-in register holding an older value: a regular file keeps what is written at
    // offset 0, so its content afterwards is exactly the one write.
    fs::write(&register, [0xaa; 48]).unwrap();
    let data = parse_digest(SHA256_HEX).unwrap();
    let value = extend(&dir, 3, &data).unwrap();
    let mut expected = SHA256_BYTES.to_vec();
    expected.extend([0u8; 16]);
    assert_eq!(fs::read(&register).unwrap(), expected);
    assert_eq!(value, expected);
    // The other registers are not touched.
    assert!(!dir.join("rtmr2:sha384").exists());
}

#[test]
fn the_command_line_extends_the_register_it_names() {
    let dir = scratch();
    for index in 0..4 {
        fs::write(dir.join(format!("rtmr{index}:sha384")), []).unwrap();
    }
    let lines =
        run(&args(&["extend-rtmr", "2", SHA256_HEX, "--measurements", dir.to_str().unwrap()]))
            .unwrap();
    let padded = format!("{}{}", SHA256_HEX.to_lowercase(), "0".repeat(32));
    assert_eq!(lines, [format!("extended rtmr2:sha384 with {padded}; it is now {padded}")]);
    assert_eq!(fs::read(dir.join("rtmr2:sha384")).unwrap().len(), 48);
    for index in [0, 1, 3] {
        assert!(fs::read(dir.join(format!("rtmr{index}:sha384"))).unwrap().is_empty());
    }
}

#[test]
fn a_missing_register_directory_is_named_and_nothing_is_created() {
    let dir = scratch().join("measurements");
    let data = parse_digest(SHA256_HEX).unwrap();
    let error = extend(&dir, 3, &data).unwrap_err();
    assert!(matches!(&error, Error::NoRegister(path) if *path == dir.join("rtmr3:sha384")));
    let message = error.to_string();
    assert!(message.contains("measurements/rtmr3:sha384 does not exist"), "{message}");
    assert!(message.contains("Linux 6.16"), "{message}");
    assert!(!dir.exists());
}

#[test]
fn a_register_missing_from_its_directory_is_named_and_not_created() {
    let dir = scratch();
    fs::write(dir.join("rtmr0:sha256"), [0u8; 32]).unwrap();
    let data = parse_digest(SHA256_HEX).unwrap();
    let error = extend(&dir, 0, &data).unwrap_err();
    assert!(matches!(&error, Error::UnknownRegister(path) if *path == dir.join("rtmr0:sha384")));
    assert!(error.to_string().contains("the kernel has no such register"), "{error}");
    assert!(!dir.join("rtmr0:sha384").exists());
}

#[test]
fn a_refused_write_is_an_error_naming_the_register() {
    // /dev/full refuses every write with ENOSPC, as the kernel refuses a bad extend.
    let dir = scratch();
    symlink("/dev/full", dir.join("rtmr3:sha384")).unwrap();
    let data = parse_digest(SHA256_HEX).unwrap();
    let error = extend(&dir, 3, &data).unwrap_err();
    let Error::Extend { path, source } = &error else { panic!("{error:?}") };
    assert_eq!(*path, dir.join("rtmr3:sha384"));
    assert_eq!(source.raw_os_error(), Some(28), "ENOSPC");
    assert!(error.to_string().starts_with("the kernel refused to extend "), "{error}");
}

#[test]
fn show_mrs_prints_every_register_by_name() {
    let dir = scratch();
    fs::write(dir.join("rtmr1:sha384"), [0x11; 48]).unwrap();
    fs::write(dir.join("mrtd:sha384"), [0xfe; 48]).unwrap();
    fs::write(dir.join("mrconfigid"), [0x00, 0x01]).unwrap();
    let lines = run(&args(&["show-mrs", "--measurements", dir.to_str().unwrap()])).unwrap();
    assert_eq!(
        lines,
        [
            "mrconfigid 0001".to_owned(),
            format!("mrtd:sha384 {}", "fe".repeat(48)),
            format!("rtmr1:sha384 {}", "11".repeat(48)),
        ]
    );
}

#[test]
fn show_mrs_refuses_a_file_larger_than_any_register() {
    let dir = scratch();
    fs::write(dir.join("rtmr0:sha384"), [0u8; 65]).unwrap();
    let error = registers(&dir).unwrap_err();
    assert!(matches!(&error, Error::TooLarge { path } if *path == dir.join("rtmr0:sha384")));
    fs::write(dir.join("rtmr0:sha384"), [0u8; 64]).unwrap();
    assert_eq!(registers(&dir).unwrap()[0].1.len(), 64);
}

#[test]
fn show_mrs_without_the_directory_says_what_the_kernel_lacks() {
    let dir = scratch().join("measurements");
    let error = run(&args(&["show-mrs", "--measurements", dir.to_str().unwrap()])).unwrap_err();
    assert!(error.to_string().contains("measurements does not exist"), "{error}");
}

#[test]
fn usage_errors() {
    for (words, expected) in [
        (&[][..], "no command given"),
        (&["extend-rtmr", "3"][..], "extend-rtmr takes an index and a digest"),
        (&["extend-rtmr", "3", SHA256_HEX, "extra"][..], "extend-rtmr takes an index and a digest"),
        (&["show-mrs", "extra"][..], "unknown command or arguments: \"show-mrs\""),
        (&["report"][..], "unknown command or arguments: \"report\""),
        (&["show-mrs", "--measurements"][..], "--measurements needs a directory"),
        (&["show-mrs", "--measurements", "a", "--measurements", "b"][..], "given twice"),
        (&["show-mrs", "--verbose"][..], "unknown option \"--verbose\""),
        (&["extend-rtmr", "4", SHA256_HEX][..], "expected 0, 1, 2 or 3"),
    ] {
        let Err(Error::Usage(message)) = run(&args(words)) else { panic!("{words:?} ran") };
        assert!(message.contains(expected), "{words:?}: {message}");
    }
}
