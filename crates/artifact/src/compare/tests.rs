//! Tests of the comparison on inputs whose differences the tests make themselves, so every
//! expected difference is the one put in (the comparison against archives GNU cpio wrote is
//! in `crates/cli/tests/compare.rs`).

use std::fs;
use std::io::Write;

use secretvm_pack::cpio::{Format, Header, Writer};

use super::*;

/// `(path, mode, data)` entries, uid/gid 0, mtime 1, as a newc archive.
fn archive(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), Format::Newc);
    for (i, (name, mode, data)) in entries.iter().enumerate() {
        let header = Header {
            name: (*name).to_owned(),
            ino: u32::try_from(i).unwrap() + 1,
            mode: *mode,
            nlink: if *mode & 0o040000 != 0 { 2 } else { 1 },
            mtime: 1,
            file_size: u32::try_from(data.len()).unwrap(),
            ..Header::default()
        };
        w.append(&header, *data).unwrap();
    }
    w.finish().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

const BASE: &[(&str, u32, &[u8])] = &[
    (".", 0o040755, b""),
    ("bin", 0o040755, b""),
    ("bin/sh", 0o100755, b"#!shell\n"),
    ("etc", 0o040755, b""),
    ("etc/hostname", 0o100644, b"secret-vm\n"),
    ("etc/motd", 0o100644, b"hello\n"),
    ("sbin", 0o120777, b"bin"),
];

fn compare(a: &[u8], b: &[u8], name: &str) -> Option<Difference> {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (dir.path().join(format!("a-{name}")), dir.path().join(format!("b-{name}")));
    fs::write(&pa, a).unwrap();
    fs::write(&pb, b).unwrap();
    compare_files(&pa, &pb).unwrap()
}

#[test]
fn equal_files_have_no_difference() {
    let a = archive(BASE);
    assert_eq!(compare(&a, &a, "x.cpio"), None);
    assert_eq!(compare(&gzip(&a), &gzip(&a), "x.cpio.gz"), None);
    assert_eq!(compare(b"", b"", "empty"), None);
}

#[test]
fn cpio_entries_that_changed_are_named_with_their_fields() {
    let mut changed: Vec<(&str, u32, &[u8])> = BASE.to_vec();
    changed[2].2 = b"#!other shell\n"; // bin/sh: data and size
    changed[4].1 = 0o100600; // etc/hostname: mode
    changed.remove(5); // etc/motd removed
    changed[5].2 = b"usr/bin"; // sbin: symlink target (index 5 after the removal)
    changed.push(("usr", 0o040755, b"")); // added
    let a = archive(BASE);
    let b = archive(&changed);
    let sha = |d: &[u8]| hex(&Sha256::digest(d));
    let want = Difference::Entries(vec![
        EntryChange {
            path: "bin/sh".into(),
            change: Change::Fields(vec![
                Field { name: "size", a: "8".into(), b: "14".into() },
                Field { name: "sha256", a: sha(b"#!shell\n"), b: sha(b"#!other shell\n") },
            ]),
        },
        EntryChange {
            path: "etc/hostname".into(),
            change: Change::Fields(vec![Field {
                name: "mode",
                a: "0644".into(),
                b: "0600".into(),
            }]),
        },
        EntryChange { path: "etc/motd".into(), change: Change::Removed },
        EntryChange {
            path: "sbin".into(),
            change: Change::Fields(vec![
                Field { name: "size", a: "3".into(), b: "7".into() },
                Field { name: "target", a: "bin".into(), b: "usr/bin".into() },
            ]),
        },
        EntryChange { path: "usr".into(), change: Change::Added },
    ]);
    assert_eq!(compare(&a, &b, "r.cpio"), Some(want.clone()));
    // The same through gzip, and across compressed and plain.
    assert_eq!(compare(&gzip(&a), &gzip(&b), "r.cpio.gz"), Some(want.clone()));
    assert_eq!(compare(&a, &gzip(&b), "r.cpio.gz"), Some(want));
}

#[test]
fn same_entries_in_another_order_or_with_other_inodes() {
    let mut reordered: Vec<(&str, u32, &[u8])> = BASE.to_vec();
    reordered.swap(4, 5);
    assert_eq!(compare(&archive(BASE), &archive(&reordered), "o.cpio"), Some(Difference::Order));

    // Same entries, same order, other inode numbers: only the bytes can say where.
    let a = archive(BASE);
    let mut b = a.clone();
    // The first header's c_ino field is the 8 hex digits after the 6-byte magic.
    b[6..14].copy_from_slice(b"00000063");
    assert_eq!(compare(&a, &b, "i.cpio"), blocks(a.len(), b.len(), 12, 1, false));
}

#[test]
fn a_malformed_archive_is_reported_not_compared() {
    let a = archive(BASE);
    let mut b = a.clone();
    b[6] = b'x'; // a non-hex digit in the first header
    match compare(&a, &b, "m.cpio") {
        Some(Difference::Unreadable { side: 'b', reason }) => {
            assert!(reason.contains("at byte 0") && reason.contains("field ino"), "{reason}");
        }
        other => panic!("expected b unreadable, got {other:?}"),
    }
}

fn blocks(
    len_a: usize,
    len_b: usize,
    first: u64,
    blocks: u64,
    decompressed: bool,
) -> Option<Difference> {
    let (len_a, len_b) = (len_a as u64, len_b as u64);
    Some(Difference::Blocks { len_a, len_b, first, blocks, decompressed })
}

#[test]
fn bytes_are_compared_by_blocks() {
    let block = BLOCK as usize;
    let a = vec![7u8; 3 * block + 100];
    let mut b = a.clone();
    b[block + 5] = 0; // block 1
    b[3 * block + 99] = 0; // the last, short block
    b.extend_from_slice(&[1; 10]); // longer: still the last block
    assert_eq!(compare(&a, &b, "bzImage"), blocks(a.len(), b.len(), BLOCK + 5, 2, false));
    // One side a prefix of the other: the first difference is where the shorter one ends.
    assert_eq!(compare(&a[..block], &a, "ovmf.fd"), blocks(block, a.len(), BLOCK, 3, false));
    // gzip: the decompressed streams are compared.
    let (ga, gb) = (gzip(&a), gzip(&b));
    assert_eq!(compare(&ga, &gb, "disk.tar.gz"), blocks(a.len(), b.len(), BLOCK + 5, 2, true));
    // Equal contents compressed differently: the gzip header's OS byte (offset 9) differs.
    let (mut g1, g2) = (gzip(&a), gzip(&a));
    g1[9] ^= 1;
    assert_eq!(compare(&g1, &g2, "initramfs.cpio.gz"), Some(Difference::Compression { first: 9 }));
    // A corrupt gzip stream is reported for its side, with how far it got.
    let mut corrupt = gzip(&a);
    let at = corrupt.len() - 12;
    corrupt[at] ^= 0xff;
    match compare(&gzip(&a), &corrupt, "disk.tar.gz") {
        Some(Difference::Unreadable { side: 'b', reason }) => {
            assert!(reason.starts_with("at decompressed byte "), "{reason}");
        }
        other => panic!("expected b unreadable, got {other:?}"),
    }
}

#[test]
fn json_values_are_named_by_path() {
    let a = br#"{"version": 1, "machines": {"tdx": {"mrtd": "aa", "rtmr": [1, 2]}}, "x": null}"#;
    let b = br#"{"version": 1, "machines": {"tdx": {"mrtd": "bb", "rtmr": [1, 3, 4]}}, "y": 1}"#;
    let c = |path: &str, a: Option<&str>, b: Option<&str>| JsonChange {
        path: path.into(),
        a: a.map(Into::into),
        b: b.map(Into::into),
    };
    assert_eq!(
        compare(a, b, "manifest.json"),
        Some(Difference::Json {
            changes: vec![
                c("machines.tdx.mrtd", Some("\"aa\""), Some("\"bb\"")),
                c("machines.tdx.rtmr[1]", Some("2"), Some("3")),
                c("machines.tdx.rtmr[2]", None, Some("4")),
                c("x", Some("null"), None),
                c("y", None, Some("1")),
            ],
            total: 5
        })
    );
    // Equal as JSON, not as bytes: the bytes are what a release is compared by.
    assert_eq!(
        compare(br#"{"a":[1,2]}"#, b"{\"a\": [1,2]}", "f.json"),
        blocks(11, 12, 5, 1, false)
    );
    assert_eq!(compare(br#"{"a":[1,2]}"#, br#"{"a":[1,2]}"#, "same.json"), None);
    assert!(matches!(
        compare(b"{", b"{}", "bad.json"),
        Some(Difference::Unreadable { side: 'a', .. })
    ));
}

#[test]
fn index_lines_are_validated() {
    let d = "0".repeat(64);
    let ok = format!("{d}  tdx/bzImage\n{d} *sev/ovmf.fd\n");
    let index = parse_index(ok.as_bytes()).unwrap();
    assert_eq!(index.keys().collect::<Vec<_>>(), ["sev/ovmf.fd", "tdx/bzImage"]);
    for (text, line, expected) in [
        (format!("{d}  ../etc/passwd\n"), 1, "a relative path without '..'"),
        (format!("{d}  /etc/passwd\n"), 1, "a relative path without '..'"),
        (format!("{d}  a\n{d}  a\n"), 2, "each path listed once"),
        (format!("{d} a\n"), 1, "two spaces after the digest"),
        (format!("{}  a\n", "g".repeat(64)), 1, "a 64-digit SHA-256"),
        ("abc\n".to_owned(), 1, "a 64-digit SHA-256"),
    ] {
        assert_eq!(parse_index(text.as_bytes()), Err((line, expected)), "{text}");
    }
}

/// A release directory: `files` with their sha256sum.txt and digest.txt, and a manifest.
fn release(dir: &Path, files: &[(&str, &[u8])], manifest: &str) {
    let mut index = String::new();
    for (path, bytes) in files {
        let p = dir.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        index.push_str(&format!("{}  {path}\n", hex(&Sha256::digest(bytes))));
    }
    fs::write(dir.join(SHA256SUM), &index).unwrap();
    fs::write(dir.join(DIGEST), format!("{}\n", hex(&Sha256::digest(index.as_bytes())))).unwrap();
    fs::write(dir.join(MANIFEST), manifest).unwrap();
}

#[test]
fn releases_are_compared_file_by_file_and_an_iso_points_at_its_cpio() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let cpio_a = archive(BASE);
    let mut changed: Vec<(&str, u32, &[u8])> = BASE.to_vec();
    changed[5].2 = b"changed\n";
    let cpio_b = archive(&changed);
    release(
        &a,
        &[
            ("tdx/bzImage", b"kernel"),
            ("tdx/rootfs-dev.cpio", &cpio_a),
            ("tdx/rootfs-dev.iso", b"iso of a"),
            ("tdx/old", b"gone"),
        ],
        r#"{"digest": "1"}"#,
    );
    release(
        &b,
        &[
            ("tdx/bzImage", b"kernel"),
            ("tdx/rootfs-dev.cpio", &cpio_b),
            ("tdx/rootfs-dev.iso", b"iso of b"),
            ("tdx/new", b"here"),
        ],
        r#"{"digest": "2"}"#,
    );
    let c = compare_releases(&a, &b).unwrap();
    assert!(!c.identical());
    let (da, db) = c.digests.clone().unwrap();
    assert_ne!(da, db);
    assert_eq!(c.only_in_a, ["tdx/old"]);
    assert_eq!(c.only_in_b, ["tdx/new"]);
    assert_eq!(c.same, 1);
    let paths: Vec<&str> = c.differing.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["tdx/rootfs-dev.cpio", "tdx/rootfs-dev.iso", "manifest.json"]);
    match &c.differing[0].difference {
        Difference::Entries(changes) => {
            assert_eq!(changes.len(), 1);
            assert_eq!(changes[0].path, "etc/motd");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.differing[1].difference, Difference::MadeFrom("tdx/rootfs-dev.cpio".into()));

    // A release against itself.
    let same = compare_releases(&a, &a).unwrap();
    assert!(same.identical(), "{same:?}");
    assert_eq!(same.same, 4);

    // A listed path that leaves the directory is refused before anything is opened.
    fs::write(b.join(SHA256SUM), format!("{}  ../a/tdx/bzImage\n", "0".repeat(64))).unwrap();
    let err = compare_releases(&a, &b).unwrap_err().to_string();
    assert!(err.contains("sha256sum.txt"), "{err}");
}
