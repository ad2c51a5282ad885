//! Tests of the file-system edge: atomic writes and tree loading.

use std::os::unix::fs::symlink;

use super::*;

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("artifact.bin");
    let err = write_atomically(&out, |file| {
        file.write_all(b"half").map_err(io_error("write", &out))?;
        Err::<(), _>(Error::Unsupported { path: out.clone(), problem: "simulated failure" })
    })
    .unwrap_err();
    assert!(err.to_string().contains("simulated failure"));
    let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_successful_write_replaces_the_file_with_mode_0644() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("artifact.bin");
    fs::write(&out, b"old").unwrap();
    write_atomically(&out, |file| file.write_all(b"new").map_err(io_error("write", &out))).unwrap();
    assert_eq!(fs::read(&out).unwrap(), b"new");
    assert_eq!(fs::metadata(&out).unwrap().mode() & 0o777, 0o644);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn load_tree_sees_every_kind_and_groups_hard_links() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("a/b")).unwrap();
    fs::write(root.join("a/file"), b"data").unwrap();
    fs::hard_link(root.join("a/file"), root.join("a/b/link")).unwrap();
    symlink("../file", root.join("a/b/sym")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    let mut nodes = load_tree(root).unwrap();
    nodes.sort_by(|a, b| a.path.cmp(&b.path));
    let summary: Vec<String> = nodes
        .iter()
        .map(|n| {
            let kind = match &n.kind {
                Kind::File { source } => {
                    format!("file {}", source.strip_prefix(root).unwrap().display())
                }
                other => format!("{other:?}"),
            };
            format!("{} {kind} group={:?}", n.path, n.link_group)
        })
        .collect();
    assert_eq!(
        summary,
        [
            "a Directory group=None",
            "a/b Directory group=None",
            "a/b/link file a/b/link group=Some(0)",
            "a/b/sym Symlink { target: \"../file\" } group=None",
            "a/file file a/file group=Some(0)",
            "sock Socket group=None",
        ]
    );
}

#[test]
fn dev_numbers_follow_the_glibc_encoding() {
    // makedev(259, 65537) in glibc: major bits 0..11 at 8..19, minor bits 0..7 at 0..7,
    // minor bits 8..31 at 20..43, major bits 12..31 at 44..63.
    let (major, minor) = (259u64, 65537u64);
    let dev = ((major & 0xfff) << 8)
        | ((major & !0xfff) << 32)
        | (minor & 0xff)
        | ((minor & !0xff) << 12);
    assert_eq!(dev_numbers(dev), (259, 65537));
    assert_eq!(dev_numbers(0x0801), (8, 1));
}

#[test]
fn errors_name_the_file() {
    let err = load_spec(Path::new("/nonexistent/initramfs.list"), 0).unwrap_err();
    assert_eq!(err.to_string(), "cannot read /nonexistent/initramfs.list");
    let err = open_file(Path::new("/nonexistent/x")).unwrap_err();
    assert_eq!(err.to_string(), "/nonexistent/x: No such file or directory (os error 2)");
}
