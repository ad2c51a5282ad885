//! `secretvm pack initramfs` and `cpio-list`: reproducibility across machines' incidental state,
//! and agreement with two independent cpio readers (GNU cpio and libarchive's bsdtar).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::support::{run_ok, secretvm, tool_on_path, vectors};

const EPOCH: &str = "1700000000";

/// A description covering every entry type, hard links, special modes and owners.
const SPEC: &str = "\
# every entry type gen_init_cpio knows
dir /bin 0755 0 0
dir /dev 0755 0 0
dir /etc 0755 0 0
dir /tmp 1777 0 0
dir /home 0755 0 0
dir /home/user 0700 1000 1000
file /init files/init.sh 0755 0 0
file /bin/tool files/blob 4755 0 0 /bin/tool-alias /etc/tool-copy
file /etc/config files/config 0640 0 42
file /home/user/notes files/config 0600 1000 1000
slink /bin/sh tool 0777 0 0
slink /etc/abs /bin/tool 0777 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/sda 0660 0 6 b 8 0
pipe /dev/initctl 0600 0 0
sock /dev/log 0666 0 0
";

/// Writes the description and its source files under `dir`; `variant` changes what must not
/// matter (on-disk modes and mtimes of the sources, creation order).
fn write_spec_tree(dir: &Path, variant: bool) {
    fs::create_dir_all(dir.join("files")).unwrap();
    let blob: Vec<u8> =
        (0u32..70_000).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("files/init.sh", b"#!/bin/sh\necho hello\n".to_vec()),
        ("files/blob", blob),
        ("files/config", b"key = value\n".to_vec()),
        ("spec.list", SPEC.as_bytes().to_vec()),
    ];
    if variant {
        files.reverse();
    }
    for (name, data) in files {
        let path = dir.join(name);
        fs::write(&path, data).unwrap();
        if variant {
            let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
            fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
            fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
        }
    }
}

/// Runs `secretvm pack initramfs ARGS` in `cwd` under a given umask and time zone.
fn pack(cwd: &Path, umask: &str, tz: &str, args: &[&str]) {
    let mut cmd = Command::new("sh");
    cmd.current_dir(cwd)
        .env("TZ", tz)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .args(["-c", &format!("umask {umask}; exec \"$0\" pack initramfs \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_secretvm"))
        .args(args);
    run_ok(&mut cmd);
}

#[test]
fn the_same_spec_gives_the_same_bytes_in_any_directory_umask_and_time_zone() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_spec_tree(a.path(), false);
    write_spec_tree(b.path(), true);
    pack(a.path(), "022", "UTC", &["--spec", "spec.list", "-o", "out.cpio.gz"]);
    let spec_b = b.path().join("spec.list");
    let out_b = b.path().join("out.cpio.gz");
    pack(
        Path::new("/"),
        "077",
        "Asia/Tokyo",
        &["--spec", spec_b.to_str().unwrap(), "-o", out_b.to_str().unwrap()],
    );
    let (bytes_a, bytes_b) =
        (fs::read(a.path().join("out.cpio.gz")).unwrap(), fs::read(&out_b).unwrap());
    assert_eq!(bytes_a, bytes_b, "the two builds differ");
    for dir in [a.path(), b.path()] {
        let mode = fs::metadata(dir.join("out.cpio.gz")).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o644);
        let leftovers: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

#[test]
fn the_same_tree_gives_the_same_bytes_whatever_its_inodes_order_and_mtimes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (root, reverse) in [(a.path().join("t"), false), (b.path().join("t"), true)] {
        let mut dirs = vec!["x", "x/y", "z"];
        let mut files = vec!["x/one", "x/y/two", "z/three", "top"];
        if reverse {
            dirs.reverse();
            files.reverse();
        }
        for d in &dirs {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in &files {
            fs::write(root.join(f), f.as_bytes()).unwrap();
        }
        for d in dirs.iter().chain(&files) {
            let mode = if files.contains(d) { 0o644 } else { 0o755 };
            fs::set_permissions(root.join(d), std::os::unix::fs::PermissionsExt::from_mode(mode))
                .unwrap();
        }
        fs::hard_link(root.join("x/one"), root.join("z/one-again")).unwrap();
        std::os::unix::fs::symlink("x/y/two", root.join("link")).unwrap();
    }
    pack(a.path(), "022", "UTC", &["--from-dir", "t", "--owner-root", "-o", "out.cpio.gz"]);
    pack(
        b.path(),
        "077",
        "America/New_York",
        &["--from-dir", "t", "--owner-root", "-o", "out.cpio.gz"],
    );
    assert_eq!(
        fs::read(a.path().join("out.cpio.gz")).unwrap(),
        fs::read(b.path().join("out.cpio.gz")).unwrap()
    );
}

/// One entry as a listing shows it: name, mode string, nlink, uid, gid, size or device numbers,
/// and symlink target. Times are left out: the three tools print them in different formats.
type Row = (String, String, String, String, String, String, Option<String>);

/// Parses `ls -l`-style lines (`cpio -tv`, `bsdtar -tv`, `secretvm pack cpio-list`):
/// mode, nlink, uid, gid, size (or `major, minor`), a date of `date_words` words, then the name.
fn parse_listing(text: &str, date_words: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut rest = line;
        let mut next = || {
            rest = rest.trim_start();
            let end = rest.find(' ').unwrap_or(rest.len());
            let (word, tail) = rest.split_at(end);
            rest = tail;
            word.to_string()
        };
        let (mode, nlink, uid, gid) = (next(), next(), next(), next());
        let mut size = next();
        if size.ends_with(',') {
            size.push_str(&next());
        }
        for _ in 0..date_words {
            next();
        }
        let name_part = rest.strip_prefix(' ').unwrap_or(rest);
        // bsdtar marks the later names of a hard-link set; the set itself is compared by nlink.
        let name_part = name_part.split(" link to ").next().unwrap();
        let (name, target) = match (mode.starts_with('l'), name_part.split_once(" -> ")) {
            (true, Some((n, t))) => (n.to_string(), Some(t.to_string())),
            _ => (name_part.to_string(), None),
        };
        rows.push((name, mode, nlink, uid, gid, size, target));
    }
    rows.sort();
    rows
}

fn compare_listings(archive: &Path) {
    let (Some(_), Some(_)) = (tool_on_path("cpio"), tool_on_path("bsdtar")) else { return };
    let ours = run_ok(secretvm().args(["pack", "cpio-list"]).arg(archive));
    let ours = parse_listing(&String::from_utf8(ours.stdout).unwrap(), 2);
    let gnu = run_ok(
        Command::new("cpio")
            .args(["-itv", "--quiet", "--numeric-uid-gid", "-F"])
            .arg(archive)
            .env("LC_ALL", "C.UTF-8"),
    );
    let gnu = parse_listing(&String::from_utf8(gnu.stdout).unwrap(), 3);
    let bsd = run_ok(
        Command::new("bsdtar")
            .args(["-tvf"])
            .arg(archive)
            .arg("--numeric-owner")
            .env("LC_ALL", "C.UTF-8"),
    );
    let bsd = parse_listing(&String::from_utf8(bsd.stdout).unwrap(), 3);
    assert!(!ours.is_empty());
    assert_same_rows(&ours, &gnu, "GNU cpio", archive);
    assert_same_rows(&ours, &bsd, "bsdtar", archive);
}

/// Fails with only the rows that differ, so a disagreement is readable.
fn assert_same_rows(ours: &[Row], theirs: &[Row], tool: &str, archive: &Path) {
    let only_ours: Vec<&Row> = ours.iter().filter(|r| !theirs.contains(r)).collect();
    let only_theirs: Vec<&Row> = theirs.iter().filter(|r| !ours.contains(r)).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty() && ours.len() == theirs.len(),
        "secretvm and {tool} disagree on {}:\nonly secretvm: {only_ours:#?}\nonly {tool}: {only_theirs:#?}",
        archive.display()
    );
}

#[test]
fn gnu_cpio_and_bsdtar_list_our_initramfs_as_we_do() {
    let dir = tempfile::tempdir().unwrap();
    write_spec_tree(dir.path(), false);
    pack(dir.path(), "022", "UTC", &["--spec", "spec.list", "--no-gzip", "-o", "out.cpio"]);
    compare_listings(&dir.path().join("out.cpio"));
}

#[test]
fn gnu_cpio_and_bsdtar_list_the_sample_vector_as_we_do() {
    let Some(vectors) = vectors() else { return };
    compare_listings(&vectors.join("packing/sample.cpio"));
}

#[test]
fn a_gzipped_initramfs_lists_like_the_plain_one() {
    let dir = tempfile::tempdir().unwrap();
    write_spec_tree(dir.path(), false);
    pack(dir.path(), "022", "UTC", &["--spec", "spec.list", "-o", "out.cpio.gz"]);
    pack(dir.path(), "022", "UTC", &["--spec", "spec.list", "--no-gzip", "-o", "out.cpio"]);
    let list = |name: &str| {
        run_ok(secretvm().args(["pack", "cpio-list"]).arg(dir.path().join(name))).stdout
    };
    assert_eq!(list("out.cpio.gz"), list("out.cpio"));
    // And gzip itself agrees that the compressed file holds exactly the plain archive.
    if tool_on_path("gzip").is_some() {
        let unzipped = run_ok(Command::new("gzip").arg("-dc").arg(dir.path().join("out.cpio.gz")));
        assert_eq!(unzipped.stdout, fs::read(dir.path().join("out.cpio")).unwrap());
    }
}

#[test]
fn errors_name_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("bad.list"), "dir /a 0755 0 0\nfile /a/x missing 0644 0 0\n")
        .unwrap();
    let err = crate::support::run_err(secretvm().current_dir(dir.path()).args([
        "pack",
        "initramfs",
        "--spec",
        "bad.list",
        "-o",
        "o.gz",
    ]));
    assert!(err.contains("cannot build the initramfs o.gz"), "{err}");
    assert!(
        err.contains(r#"cannot read the contents of initramfs file "a/x": missing: No such file"#),
        "{err}"
    );
    assert!(!dir.path().join("o.gz").exists(), "a failed build left its output");

    fs::write(dir.path().join("bad2.list"), "dir /a 0755 0 0\nslink /b\n").unwrap();
    let err = crate::support::run_err(secretvm().current_dir(dir.path()).args([
        "pack",
        "initramfs",
        "--spec",
        "bad2.list",
        "-o",
        "o.gz",
    ]));
    assert!(
        err.contains("bad2.list: line 2: expected `slink <name> <target> <mode> <uid> <gid>`"),
        "{err}"
    );

    let err = crate::support::run_err(secretvm().args(["pack", "cpio-list", "/nonexistent.cpio"]));
    assert!(err.contains("cannot open /nonexistent.cpio"), "{err}");
}
