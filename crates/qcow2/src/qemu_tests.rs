//! Cross-checks against a live `qemu-img` (the reference is qemu-img 10.0.2).
//!
//! Each test looks for `qemu-img` on `PATH`; without it the test fails under `CI=true` and is
//! skipped with a message otherwise.
//! Files go to a fresh directory under [`std::env::temp_dir`], removed when the test ends.
//! Test code may spawn processes; the library never does.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::{Error, empty_image, parse_size, read_header};

/// Finds `qemu-img` on `PATH`, or skips.
fn qemu_img() -> Option<PathBuf> {
    secretvm_testkit::tool_on_path("qemu-img")
}

/// A scratch directory, removed on drop.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Scratch {
        Scratch(tempfile::tempdir().unwrap())
    }

    fn dir(&self) -> &Path {
        self.0.path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn run(qemu_img: &Path, args: &[&str], cwd: &Path) -> Output {
    Command::new(qemu_img)
        .args(args)
        .current_dir(cwd)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("running qemu-img {args:?}: {e}"))
}

/// `qemu-img create -f qcow2 -- NAME SIZE` in `dir`.
fn create(qemu_img: &Path, dir: &Scratch, name: &str, size: &str) -> Output {
    run(qemu_img, &["create", "-f", "qcow2", "--", name, size], dir.dir())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Sizes that cover the layout rules: zero, not a multiple of 512, not a multiple of the
/// cluster, exactly one L1 entry (512M) and one sector more (512M + 512), an L1 table of
/// exactly one cluster (4T) and one sector more (4T + 512), the vector's 300G, a size that
/// rounds up to the largest (2P - 1) and the largest (2P) with its 512-cluster L1 table.
const SIZES: &[&str] = &[
    "0",
    "512",
    "1000",
    "65537",
    "1M",
    "512M",
    "536871424",
    "1G",
    "1.5G",
    "300G",
    "1T",
    "4T",
    "4398046511616",
    "2251799813685247",
    "2P",
];

#[test]
fn create_matches_qemu_img() {
    let Some(qemu_img) = qemu_img() else { return };
    let dir = Scratch::new();
    for (i, size) in SIZES.iter().enumerate() {
        let name = format!("qemu-{i}.qcow2");
        let out = create(&qemu_img, &dir, &name, size);
        assert!(out.status.success(), "qemu-img create {size}: {}", text(&out.stderr));
        let theirs = std::fs::read(dir.path(&name)).unwrap();
        let ours = empty_image(parse_size(size).unwrap()).unwrap();
        assert_eq!(ours.len(), theirs.len(), "length for {size}");
        if ours != theirs {
            let at = ours.iter().zip(&theirs).position(|(a, b)| a != b);
            panic!("{size}: first difference at byte {at:#x?}");
        }
        std::fs::remove_file(dir.path(&name)).unwrap();
    }
}

#[test]
fn qemu_img_check_accepts_ours() {
    let Some(qemu_img) = qemu_img() else { return };
    let dir = Scratch::new();
    for (i, size) in SIZES.iter().enumerate() {
        let name = format!("ours-{i}.qcow2");
        std::fs::write(dir.path(&name), empty_image(parse_size(size).unwrap()).unwrap()).unwrap();
        let out = run(&qemu_img, &["check", "-f", "qcow2", &name], dir.dir());
        assert!(
            out.status.success()
                && text(&out.stdout).contains("No errors were found on the image."),
            "qemu-img check of our {size} image: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        std::fs::remove_file(dir.path(&name)).unwrap();
    }
}

/// Compares [`read_header`] with `qemu-img info --output=json` for one file in `dir`.
fn compare_info(qemu_img: &Path, dir: &Scratch, name: &str) {
    let bytes = std::fs::read(dir.path(name)).unwrap();
    let info = read_header(&bytes, bytes.len() as u64)
        .unwrap_or_else(|e| panic!("read_header({name}): {e}"));
    let out = run(qemu_img, &["info", "--output=json", "-f", "qcow2", name], dir.dir());
    assert!(out.status.success(), "qemu-img info {name}: {}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let data = &json["format-specific"]["data"];
    assert_eq!(json["format-specific"]["type"], "qcow2", "{name}");
    assert_eq!(json["virtual-size"], info.virtual_size, "{name}: virtual-size");
    assert_eq!(json["cluster-size"], info.cluster_size, "{name}: cluster-size");
    assert_eq!(json["dirty-flag"], info.dirty, "{name}: dirty-flag");
    assert_eq!(data["compat"], info.compat, "{name}: compat");
    assert_eq!(data["refcount-bits"], info.refcount_bits, "{name}: refcount-bits");
    if info.version == 3 {
        assert_eq!(data["corrupt"], info.corrupt, "{name}: corrupt");
        let compression = serde_json::to_value(info.compression_type).unwrap();
        assert_eq!(data["compression-type"], compression, "{name}: compression-type");
        assert_eq!(data["lazy-refcounts"], info.lazy_refcounts, "{name}: lazy-refcounts");
        assert_eq!(data["extended-l2"], info.extended_l2, "{name}: extended-l2");
    }
    let optional = |v: &Value| v.as_str().map(str::to_owned);
    assert_eq!(optional(&json["backing-filename"]), info.backing_file, "{name}: backing-filename");
    assert_eq!(
        optional(&json["backing-filename-format"]),
        info.backing_format,
        "{name}: backing-filename-format"
    );
    assert_eq!(optional(&data["data-file"]), info.data_file, "{name}: data-file");
    if info.data_file.is_some() {
        assert_eq!(data["data-file-raw"], info.data_file_raw, "{name}: data-file-raw");
    }
}

#[test]
fn info_matches_qemu_img() {
    let Some(qemu_img) = qemu_img() else { return };
    let dir = Scratch::new();
    // Our own images.
    for (i, size) in SIZES.iter().enumerate() {
        let name = format!("ours-{i}.qcow2");
        std::fs::write(dir.path(&name), empty_image(parse_size(size).unwrap()).unwrap()).unwrap();
        compare_info(&qemu_img, &dir, &name);
        std::fs::remove_file(dir.path(&name)).unwrap();
    }
    // qemu-img's images with non-default options: version 2, lazy refcounts, extended L2,
    // zstd, other cluster sizes, a backing file with its format, an external data file.
    let variants: &[(&str, &[&str])] = &[
        ("v2.qcow2", &["-o", "compat=0.10", "v2.qcow2", "1G"]),
        ("lazy.qcow2", &["-o", "lazy_refcounts=on,refcount_bits=64", "lazy.qcow2", "10G"]),
        (
            "l2.qcow2",
            &["-o", "extended_l2=on,cluster_size=2M,compression_type=zstd", "l2.qcow2", "3T"],
        ),
        ("small.qcow2", &["-o", "cluster_size=512,refcount_bits=1", "small.qcow2", "100M"]),
        ("backed.qcow2", &["-b", "v2.qcow2", "-F", "qcow2", "backed.qcow2"]),
        ("data.qcow2", &["-o", "data_file=data.raw,data_file_raw=on", "data.qcow2", "1M"]),
    ];
    for (name, args) in variants {
        let mut full = vec!["create", "-f", "qcow2"];
        full.extend_from_slice(args);
        let out = run(&qemu_img, &full, dir.dir());
        assert!(out.status.success(), "qemu-img {full:?}: {}", text(&out.stderr));
        compare_info(&qemu_img, &dir, name);
    }
}

/// What qemu-img made of a size string, classified from its output.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// The `size=` of its "Formatting" line.
    Size(u64),
    /// "Invalid image size specified: '...'".
    Invalid,
    /// "Invalid image size specified. Must be between 0 and 9223372036854775807."
    Range,
}

fn qemu_parse(qemu_img: &Path, dir: &Scratch, input: &str) -> Parsed {
    let out = create(qemu_img, dir, "parse.qcow2", input);
    let _ = std::fs::remove_file(dir.path("parse.qcow2"));
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    if let Some(size) = stdout
        .split_whitespace()
        .find_map(|word| word.strip_prefix("size="))
        .and_then(|n| n.parse().ok())
    {
        return Parsed::Size(size);
    }
    if stderr.contains("Must be between 0 and 9223372036854775807") {
        return Parsed::Range;
    }
    assert!(stderr.contains("Invalid image size specified: '"), "{input:?}: {stdout}{stderr}");
    Parsed::Invalid
}

#[test]
fn parse_size_matches_qemu_img() {
    let Some(qemu_img) = qemu_img() else { return };
    let dir = Scratch::new();
    let inputs = [
        "0",
        "1",
        "1000",
        "08",
        "1b",
        "1k",
        "1K",
        "1m",
        "1G",
        "1t",
        "1P",
        "1e",
        "7E",
        "8E",
        "16E",
        "1.5G",
        "1.1G",
        "0.1k",
        "0.3k",
        "0.0005k",
        "0.00048828125K",
        "0.00048828124K",
        "1.99999999999999999999K",
        ".5K",
        "+.5K",
        "1.",
        "1.K",
        "1.0",
        "1.5",
        "1.5B",
        "1.5e",
        "1.5e3K",
        "0x10",
        "0x1b",
        "0X1E",
        "0x10K",
        "0x",
        "0x1.5",
        "0x8000000000000000",
        "+1",
        " 1",
        "1 ",
        "-1",
        "-0",
        "-.5",
        "-1G",
        "",
        "abc",
        "1e3",
        "1kb",
        "1KiB",
        "inf",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551616",
        "99999999999999999999G",
        "7.9999999999999999E",
        "15.9999999999999999E",
    ];
    let mut mismatches = Vec::new();
    for input in inputs {
        let theirs = qemu_parse(&qemu_img, &dir, input);
        let ours = match parse_size(input) {
            Ok(size) => Parsed::Size(size),
            Err(Error::InvalidSize { .. }) => Parsed::Invalid,
            Err(Error::SizeOutOfRange { .. }) => Parsed::Range,
            Err(other) => panic!("{input:?}: {other}"),
        };
        if ours != theirs {
            mismatches.push(format!("{input:?}: qemu-img {theirs:?}, ours {ours:?}"));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

/// Sizes qemu-img accepts or rejects at the edges; ours must agree.
#[test]
fn rejections_match_qemu_img() {
    let Some(qemu_img) = qemu_img() else { return };
    let dir = Scratch::new();
    for input in [
        "2251799813685248",
        "2251799813685249",
        "2251799813685760",
        "3P",
        "7E",
        "9223372036854775296",
        "9223372036854775807",
        "8E",
        "-1",
        "1.5",
        "abc",
    ] {
        let theirs = create(&qemu_img, &dir, "edge.qcow2", input).status.success();
        let _ = std::fs::remove_file(dir.path("edge.qcow2"));
        let ours = parse_size(input).and_then(empty_image);
        assert_eq!(ours.is_ok(), theirs, "{input:?}: qemu-img success {theirs}, ours {ours:?}");
        if let Ok(size) = parse_size(input)
            && !theirs
        {
            assert!(
                matches!(ours, Err(Error::ImageTooLarge { virtual_size, .. }) if virtual_size == size)
            );
        }
    }
}
