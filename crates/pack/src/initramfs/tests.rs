//! Tests of the initramfs rules, read back through this crate's cpio reader (whose own known-answer
//! tests check it against an independent decoder) and, for gzip, against RFC 1952.

use std::io::{Cursor, Read};

use sha2::{Digest, Sha256};

use super::*;
use crate::cpio::Reader;

fn file(path: &str, data: &'static [u8], mtime: u64) -> Node<&'static [u8]> {
    Node {
        path: path.to_string(),
        kind: Kind::File { source: data },
        permissions: 0o644,
        uid: 0,
        gid: 0,
        mtime,
        link_group: None,
    }
}

fn dir(path: &str) -> Node<&'static [u8]> {
    Node { kind: Kind::Directory, permissions: 0o755, ..file(path, b"", 100) }
}

fn open(data: &&'static [u8]) -> io::Result<(u64, &'static [u8])> {
    Ok((data.len() as u64, *data))
}

fn plain(nodes: Vec<Node<&'static [u8]>>, options: &Options) -> Result<Vec<u8>> {
    let options = Options { gzip_level: None, ..options.clone() };
    write(nodes, &options, open, Vec::new())
}

/// `name ino mode nlink uid:gid mtime size rdev data` for every entry, read back.
fn listing(archive: &[u8]) -> Vec<String> {
    let mut reader = Reader::new(Cursor::new(archive));
    let mut lines = Vec::new();
    while let Some(mut entry) = reader.next_entry().unwrap() {
        let h = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        lines.push(format!(
            "{} ino={} mode={:o} nlink={} {}:{} mtime={} size={} rdev={}:{} dev={}:{} {:?}",
            h.name,
            h.ino,
            h.mode,
            h.nlink,
            h.uid,
            h.gid,
            h.mtime,
            h.file_size,
            h.rdev_major,
            h.rdev_minor,
            h.dev_major,
            h.dev_minor,
            String::from_utf8_lossy(&data)
        ));
    }
    lines
}

fn sample_tree() -> Vec<Node<&'static [u8]>> {
    let mut linked_a = file("z/hl-2", b"shared", 50);
    linked_a.link_group = Some(7);
    let mut linked_b = file("a/hl-1", b"shared", 50);
    linked_b.link_group = Some(7);
    vec![
        file("z/late", b"late", 10_000),
        dir("z"),
        linked_a,
        dir("a"),
        dir("a/sub"),
        dir("a/sub2"),
        linked_b,
        file("a-b", b"dash sorts before slash", 5),
        Node {
            kind: Kind::Symlink { target: "../z/late".into() },
            permissions: 0o777,
            ..file("a/link", b"", 5)
        },
        Node {
            kind: Kind::CharDevice { major: 5, minor: 1 },
            permissions: 0o600,
            ..file("a/console", b"", 5)
        },
        Node {
            kind: Kind::BlockDevice { major: 8, minor: 16 },
            permissions: 0o660,
            ..file("a/sdb", b"", 5)
        },
        Node { kind: Kind::Fifo, ..file("a/fifo", b"", 5) },
        Node { kind: Kind::Socket, ..file("a/sock", b"", 5) },
        Node { permissions: 0o4755, uid: 1000, gid: 100, ..file("/bin-suid", b"#!", 5) },
    ]
}

#[test]
fn entries_are_sorted_numbered_and_linked_by_the_newc_rules() {
    let archive = plain(sample_tree(), &Options { epoch: 1000, ..Options::default() }).unwrap();
    // Expected by the rules in the module doc: byte order of paths (`-` < `/`), inodes from 1
    // in output order, the hard-link set at the position of its last name (`z/hl-2`) with the
    // data on its last entry, directory nlink 2 + subdirectories, mtimes clamped to 1000.
    expect_test::expect![[r##"
        [
            "a ino=1 mode=40755 nlink=4 0:0 mtime=100 size=0 rdev=0:0 dev=0:0 \"\"",
            "a-b ino=2 mode=100644 nlink=1 0:0 mtime=5 size=23 rdev=0:0 dev=0:0 \"dash sorts before slash\"",
            "a/console ino=3 mode=20600 nlink=1 0:0 mtime=5 size=0 rdev=5:1 dev=0:0 \"\"",
            "a/fifo ino=4 mode=10644 nlink=1 0:0 mtime=5 size=0 rdev=0:0 dev=0:0 \"\"",
            "a/link ino=5 mode=120777 nlink=1 0:0 mtime=5 size=9 rdev=0:0 dev=0:0 \"../z/late\"",
            "a/sdb ino=6 mode=60660 nlink=1 0:0 mtime=5 size=0 rdev=8:16 dev=0:0 \"\"",
            "a/sock ino=7 mode=140644 nlink=1 0:0 mtime=5 size=0 rdev=0:0 dev=0:0 \"\"",
            "a/sub ino=8 mode=40755 nlink=2 0:0 mtime=100 size=0 rdev=0:0 dev=0:0 \"\"",
            "a/sub2 ino=9 mode=40755 nlink=2 0:0 mtime=100 size=0 rdev=0:0 dev=0:0 \"\"",
            "bin-suid ino=10 mode=104755 nlink=1 1000:100 mtime=5 size=2 rdev=0:0 dev=0:0 \"#!\"",
            "z ino=11 mode=40755 nlink=2 0:0 mtime=100 size=0 rdev=0:0 dev=0:0 \"\"",
            "a/hl-1 ino=12 mode=100644 nlink=2 0:0 mtime=50 size=0 rdev=0:0 dev=0:0 \"\"",
            "z/hl-2 ino=12 mode=100644 nlink=2 0:0 mtime=50 size=6 rdev=0:0 dev=0:0 \"shared\"",
            "z/late ino=13 mode=100644 nlink=1 0:0 mtime=1000 size=4 rdev=0:0 dev=0:0 \"late\"",
        ]
    "##]]
    .assert_debug_eq(&listing(&archive));
}

#[test]
fn output_does_not_depend_on_input_order() {
    let options = Options { epoch: 1000, ..Options::default() };
    let forward = write(sample_tree(), &options, open, Vec::new()).unwrap();
    let mut reversed = sample_tree();
    reversed.reverse();
    let backward = write(reversed, &options, open, Vec::new()).unwrap();
    assert_eq!(forward, backward);
}

#[test]
fn owner_override_and_root_entry() {
    let mut nodes = sample_tree();
    nodes.push(Node { permissions: 0o700, ..dir("/") });
    let options = Options { epoch: 1000, owner: Some((0, 0)), gzip_level: None };
    let lines = listing(&plain(nodes, &options).unwrap());
    assert!(lines[0].starts_with(". ino=1 mode=40700 nlink=4 0:0"), "{}", lines[0]);
    assert!(lines.iter().all(|l| l.contains(" 0:0 mtime=")), "{lines:#?}");
}

#[test]
fn gzip_header_is_fixed_per_rfc_1952() {
    let archive =
        write(sample_tree(), &Options { epoch: 1000, ..Options::default() }, open, Vec::new())
            .unwrap();
    // ID1 ID2, CM=8 (deflate), FLG=0 (no name, no comment, no extra), MTIME=0,
    // XFL=2 (maximum compression), OS=3 (Unix).
    assert_eq!(archive[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
    let mut cpio = Vec::new();
    flate2::read::GzDecoder::new(&archive[..]).read_to_end(&mut cpio).unwrap();
    assert_eq!(cpio, plain(sample_tree(), &Options { epoch: 1000, ..Options::default() }).unwrap());
}

/// A pin, not an oracle: the rules are checked above; this fails when a dependency update
/// changes the compressed bytes (flate2 with zlib-rs at level 9), which would change every
/// published initramfs digest. Update it only together with the pinned versions in Cargo.toml.
#[test]
fn compressed_bytes_are_pinned() {
    let archive =
        write(sample_tree(), &Options { epoch: 1000, ..Options::default() }, open, Vec::new())
            .unwrap();
    let digest = hex::encode(Sha256::digest(&archive));
    expect_test::expect!["226dff1b67140094da92b8331111846e9255ef7b94386034e29410a30f5f0c54"]
        .assert_eq(&digest);
}

#[test]
fn rejects_bad_trees() {
    let with = |extra: Node<&'static [u8]>| {
        let mut nodes = vec![dir("a")];
        nodes.push(extra);
        plain(nodes, &Options::default()).unwrap_err().to_string()
    };
    let cases = [
        (with(file("a", b"", 0)), r#"initramfs path "a" is given twice"#),
        (with(file("./a", b"", 0)), r#"initramfs path "a" is given twice"#),
        (
            with(file("b/c", b"", 0)),
            r#"initramfs path "b/c": its parent directory "b" is not in the tree"#,
        ),
        (with(file("a/../etc", b"", 0)), r#"initramfs path "a/../etc": has a `..` component"#),
        (
            with(file("a//b", b"", 0)),
            r#"initramfs path "a//b": has an empty component (`//` or a trailing `/`)"#,
        ),
        (with(file("a/./b", b"", 0)), r#"initramfs path "a/./b": has a `.` component"#),
        (
            with(file("a/", b"", 0)),
            r#"initramfs path "a/": has an empty component (`//` or a trailing `/`)"#,
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }

    // A file under a path that is not a directory.
    let err =
        plain(vec![file("a", b"x", 0), file("a/b", b"", 0)], &Options::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"initramfs path "a/b": its parent directory "a" is not in the tree"#
    );

    // Hard links whose names disagree about the inode's metadata.
    let mut one = file("x", b"d", 0);
    one.link_group = Some(1);
    let two = Node { permissions: 0o600, ..one.clone() };
    let two = Node { path: "y".into(), ..two };
    let err = plain(vec![one, two], &Options::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"hard link "y": its mode, owner or mtime differs from the other names of the file"#
    );
}

#[test]
fn a_file_shorter_than_announced_is_an_error() {
    let lying_open = |data: &&'static [u8]| -> io::Result<(u64, &'static [u8])> {
        Ok((data.len() as u64 + 1, *data))
    };
    let options = Options { gzip_level: None, ..Options::default() };
    let err = write(vec![file("f", b"abc", 0)], &options, lying_open, Vec::new()).unwrap_err();
    assert!(matches!(err, Error::Cpio(_)), "{err:?}");
}

#[test]
fn open_errors_name_the_entry() {
    let failing_open = |_: &&'static [u8]| -> io::Result<(u64, &'static [u8])> {
        Err(io::Error::new(io::ErrorKind::NotFound, "src/f: no such file"))
    };
    let options = Options { gzip_level: None, ..Options::default() };
    let err = write(vec![file("f", b"abc", 0)], &options, failing_open, Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), r#"cannot read the contents of initramfs file "f""#);
    assert_eq!(std::error::Error::source(&err).unwrap().to_string(), "src/f: no such file");
}
