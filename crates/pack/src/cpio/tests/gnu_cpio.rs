//! Interoperability with GNU cpio: it reads our crc archives, and we read its.
//!
//! These tests run the `cpio` binary; without it they are skipped (or fail when `CI=true`).

#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::{read_data, small_tree, write_tree};
use crate::cpio::{FileType, Format, Reader};

fn cpio_available() -> bool {
    secretvm_testkit::tool_on_path("cpio").is_some()
}

/// Runs `cpio` with `args` in `dir`, feeding it `stdin`.
fn run_cpio(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new("cpio")
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn we_read_gnu_cpio_crc_archives() {
    if !cpio_available() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let tree = scratch.path();
    std::fs::create_dir(tree.join("d")).unwrap();
    std::fs::write(tree.join("f"), "hello").unwrap();
    std::fs::write(tree.join("d/g"), "crc data\n").unwrap();
    std::os::unix::fs::symlink("f", tree.join("l")).unwrap();

    let output = run_cpio(tree, &["-o", "-H", "crc", "--reproducible"], b"f\nd\nd/g\nl\n");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let archive = output.stdout;

    let mut reader = Reader::new(&archive[..]);
    let mut seen = Vec::new();
    while let Some(mut entry) = reader.next_entry().unwrap() {
        assert_eq!(entry.format(), Format::Crc);
        let header = entry.header().clone();
        let content = match header.file_type() {
            Some(FileType::Symlink) => entry.read_symlink_target().unwrap().into_bytes(),
            // Reading to the end verifies GNU's checksum.
            _ => read_data(&mut entry).unwrap(),
        };
        seen.push((header.file_type(), header.check, content, header.name));
    }
    let want: [(&str, Option<FileType>, u32, &[u8]); 4] = [
        // GNU cpio 2.13 wrote 00000214 for "hello" in the earlier manual run; the other sum is
        // 99 + 114 + 99 + 32 + 100 + 97 + 116 + 97 + 10. It writes 0 for symlinks.
        ("f", Some(FileType::Regular), 0x214, b"hello"),
        ("d", Some(FileType::Directory), 0, b""),
        ("d/g", Some(FileType::Regular), 764, b"crc data\n"),
        ("l", Some(FileType::Symlink), 0, b"f"),
    ];
    let seen: Vec<_> = seen
        .iter()
        .map(|(file_type, check, content, name)| (name.as_str(), *file_type, *check, &content[..]))
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn gnu_cpio_reads_our_crc_archives() {
    if !cpio_available() {
        return;
    }
    let tree = small_tree();
    // The device node needs privileges to extract; leave it out.
    let tree: Vec<_> = tree.into_iter().filter(|(header, _)| header.name != "null").collect();
    let archive = write_tree(Format::Crc, &tree);

    let scratch = tempfile::tempdir().unwrap();
    let listing = run_cpio(scratch.path(), &["-i", "-t"], &archive);
    assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
    let names: Vec<_> = tree.iter().map(|(header, _)| format!("{}\n", header.name)).collect();
    assert_eq!(String::from_utf8(listing.stdout).unwrap(), names.concat());

    // Extraction verifies the checksums.
    let extract = run_cpio(scratch.path(), &["-i", "-d", "--no-absolute-filenames"], &archive);
    let stderr = String::from_utf8_lossy(&extract.stderr);
    assert!(extract.status.success() && !stderr.contains("checksum"), "{stderr}");
    assert_eq!(std::fs::read(scratch.path().join("d/f")).unwrap(), b"hello");
    assert_eq!(std::fs::read(scratch.path().join("d/empty")).unwrap(), b"");
    assert_eq!(std::fs::read_link(scratch.path().join("l")).unwrap(), Path::new("d/f"));

    // A wrong check field makes GNU cpio complain, so the extraction above did check them.
    let position = archive.windows(6).position(|window| window == b"d/f\0\0\0").unwrap();
    let check_field = position - 8;
    let mut corrupted = archive.clone();
    corrupted[check_field..position].copy_from_slice(b"00000215");
    let scratch = tempfile::tempdir().unwrap();
    let extract = run_cpio(scratch.path(), &["-i", "-d", "--no-absolute-filenames"], &corrupted);
    let stderr = String::from_utf8_lossy(&extract.stderr);
    assert!(stderr.contains("checksum error"), "{stderr}");
}
