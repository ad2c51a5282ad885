//! `secretvm pack iso` against independent readers: `isoinfo` (genisoimage), xorriso's own
//! reader, bsdtar (libarchive) and the Linux kernel (see `boot.rs` for the guest).
//!
//! Expected values come from the shared vectors (xorriso 1.5.4's `sample.iso` and its listings,
//! and `sample.cpio.headers.txt`, decoded from the cpio by an independent Python script) or from
//! running the readers on the cpio itself, never from our own output.
//!
//! Reader quirks, documented here rather than bent into the writer:
//! - isoinfo shows no setuid, setgid or sticky bits, `f` for fifos, and no device numbers; it
//!   prints owner ids in octal, and runs wide ones together (65534 and 4294967294 become one
//!   field), so those owners are checked with xorriso.
//! - xorriso and bsdtar decode PN as glibc's 64-bit `dev_t` split in two. For `dev/bigdev`
//!   (259:65537) we write high 259, low 65537, which Linux reads right; they show 256:271581185.
//!   xorriso's own image writes glibc's packing (high 0, low 0x10010301), which Linux reads as
//!   259:1 (`sample.iso.linux-guest.txt`).
//! - bsdtar 3.6 drops the `/` between two SL entries of one symlink target (`etc/long-symlink`),
//!   on xorriso's image too.
//! - xorriso's `lsdl` shows link count 1 for every entry; the PX link counts are checked with
//!   isoinfo and Linux.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::{run_err, run_ok, secretvm, tool_on_path, vectors};

/// The flags of the upstream command in the vectors' SOURCES.md.
const UPSTREAM: &[&str] = &[
    "--source-date-epoch=1650000000",
    "--owner-root",
    "--all-times-epoch",
    "--xorriso-compat",
    "--allow-long-names",
];

/// Runs `secretvm pack iso CPIO -o OUT FLAGS`.
fn pack_iso(cpio: &Path, out: &Path, flags: &[&str]) {
    run_ok(secretvm().args(["pack", "iso"]).arg(cpio).arg("-o").arg(out).args(flags));
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run_ok(cmd).stdout).unwrap()
}

fn isoinfo(iso: &Path) -> String {
    stdout(Command::new("isoinfo").args(["-R", "-l", "-i"]).arg(iso))
}

fn lsdl(iso: &Path) -> String {
    stdout(
        Command::new("xorriso")
            .env("LC_ALL", "C.UTF-8")
            .arg("-indev")
            .arg(iso)
            .args(["-find", "/", "-exec", "lsdl"])
            .stderr(std::process::Stdio::null()),
    )
}

/// The major and minor numbers glibc's `major()`/`minor()` give for a PN entry read as the
/// 64-bit `dev_t` `high << 32 | low` (glibc `sys/sysmacros.h`).
fn glibc_decode(high: u64, low: u64) -> (u64, u64) {
    let dev = high << 32 | low;
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

#[test]
fn sample_lists_like_xorriso_image() {
    let Some(vectors) = vectors() else { return };
    let (Some(_), Some(_)) = (tool_on_path("isoinfo"), tool_on_path("xorriso")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("sample.iso");
    pack_iso(&vectors.join("packing/sample.cpio"), &iso, UPSTREAM);

    // Same names, modes, link counts, owners, sizes, dates, extents and targets as xorriso's.
    let want = fs::read_to_string(vectors.join("packing/sample.iso.isoinfo.txt")).unwrap();
    assert_eq!(isoinfo(&iso), want);

    let want = fs::read_to_string(vectors.join("packing/sample.iso.lsdl.txt")).unwrap();
    let got = lsdl(&iso);
    let (major, minor) = glibc_decode(259, 65537);
    let mut expected = Vec::new();
    for line in want.lines() {
        if line.ends_with("'/dev/bigdev'") {
            expected.push(line.replace("259,65537", &format!("{major},{minor}")));
        } else {
            expected.push(line.to_owned());
        }
    }
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got, expected);
}

/// One entry of `sample.cpio.headers.txt`.
#[derive(Debug, Clone)]
struct CpioEntry {
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    size: u64,
    rdev: (u32, u32),
    target: Option<String>,
}

/// Reads the independent decoder's listing of sample.cpio: path -> entry.
fn cpio_headers(text: &str) -> BTreeMap<String, CpioEntry> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(1).filter(|l| !l.starts_with('#')) {
        let fields: Vec<&str> = line.splitn(15, ' ').collect();
        let [_, ino, mode, uid, gid, nlink, mtime, size, _, _, rmaj, rmin, _, _, rest] = fields[..]
        else {
            panic!("bad line {line:?}")
        };
        let (name, target) = match rest.split_once(" -> ") {
            Some((n, t)) => (n, Some(t.to_owned())),
            None => (rest, None),
        };
        if name == "TRAILER!!!" {
            continue;
        }
        let num = |s: &str| s.parse::<u32>().unwrap();
        out.insert(
            name.to_owned(),
            CpioEntry {
                ino: num(ino),
                mode: u32::from_str_radix(mode, 8).unwrap(),
                uid: num(uid),
                gid: num(gid),
                nlink: num(nlink),
                mtime: num(mtime),
                size: size.parse().unwrap(),
                rdev: (num(rmaj), num(rmin)),
                target,
            },
        );
    }
    // Hard-link members without data show the size of the member that has it.
    let sizes: BTreeMap<u32, u64> = out
        .values()
        .filter(|e| e.nlink > 1 && e.mode & 0o170000 == 0o100000 && e.size > 0)
        .map(|e| (e.ino, e.size))
        .collect();
    for e in out.values_mut() {
        if e.nlink > 1 && e.mode & 0o170000 == 0o100000 {
            e.size = sizes.get(&e.ino).copied().unwrap_or(0);
        }
    }
    out
}

/// `ls -l`-style permission string; `special` shows setuid, setgid and sticky as ls does.
fn mode_string(mode: u32, fifo: char, special: bool) -> String {
    let kind = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o020000 => 'c',
        0o060000 => 'b',
        0o010000 => fifo,
        0o140000 => 's',
        _ => '-',
    };
    let mut s = String::from(kind);
    for (shift, bit, set, unset) in
        [(6, 0o4000, 's', 'S'), (3, 0o2000, 's', 'S'), (0, 0o1000, 't', 'T')]
    {
        let rwx = (mode >> shift) & 7;
        s.push(if rwx & 4 != 0 { 'r' } else { '-' });
        s.push(if rwx & 2 != 0 { 'w' } else { '-' });
        let x = rwx & 1 != 0;
        s.push(match (special && mode & bit != 0, x) {
            (true, true) => set,
            (true, false) => unset,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// An owner id as isoinfo prints it (octal).
fn octal(field: &str) -> Option<u32> {
    u32::from_str_radix(field, 8).ok()
}

/// An entry of an `isoinfo -R -l` listing: mode, link count, owner and group (`None` when
/// isoinfo ran them together), size, symlink target.
type IsoinfoEntry = (String, u32, Option<u32>, Option<u32>, u64, Option<String>);

/// Parses `isoinfo -R -l`: path -> entry.
fn parse_isoinfo(text: &str) -> BTreeMap<String, IsoinfoEntry> {
    let mut out = BTreeMap::new();
    let mut dir = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Directory listing of /") {
            dir = rest.trim_end_matches('/').to_owned();
            continue;
        }
        let Some((head, name)) = line.split_once("]  ") else { continue };
        let f: Vec<&str> = head.split_whitespace().collect();
        let name = name.strip_suffix(' ').unwrap_or(name);
        let (name, target) = match name.split_once(" -> ") {
            Some((n, t)) => (n, Some(t.to_owned())),
            None => (name, None),
        };
        if name == "." || name == ".." {
            continue;
        }
        let path = if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") };
        // From the end: size, month, day, year, "[", extent, flags.
        let size = f[f.len() - 7].parse::<u64>().unwrap();
        let nlink = f[1].parse::<u32>().unwrap();
        let (uid, gid) = match f.len() {
            11 => (octal(f[2]), octal(f[3])),
            _ => (None, None),
        };
        out.insert(path, (f[0].to_owned(), nlink, uid, gid, size, target));
    }
    out
}

#[test]
fn iso_keeps_the_cpio_tree() {
    let Some(vectors) = vectors() else { return };
    let (Some(_), Some(_)) = (tool_on_path("isoinfo"), tool_on_path("xorriso")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("kept.iso");
    pack_iso(
        &vectors.join("packing/sample.cpio"),
        &iso,
        &["--source-date-epoch=1800000000", "--allow-long-names"],
    );
    let headers =
        cpio_headers(&fs::read_to_string(vectors.join("packing/sample.cpio.headers.txt")).unwrap());
    let mut root = headers.clone();
    root.remove(".");

    // isoinfo: permission bits (without the special ones), link counts, owners, sizes, targets.
    let listed = parse_isoinfo(&isoinfo(&iso));
    assert_eq!(listed.keys().collect::<Vec<_>>(), root.keys().collect::<Vec<_>>());
    for (path, e) in &root {
        let got = &listed[path];
        let is_dir = e.mode & 0o170000 == 0o040000;
        let size = if e.mode & 0o170000 == 0o100000 { e.size } else { got.4 };
        let (uid, gid) = if got.2.is_some() { (Some(e.uid), Some(e.gid)) } else { (None, None) };
        let want = (mode_string(e.mode, 'f', false), e.nlink, uid, gid, size, e.target.clone());
        assert_eq!(got, &want, "{path}");
        if is_dir {
            assert_eq!(got.4 % 2048, 0, "{path}");
        }
    }

    // xorriso: the special bits and the device numbers.
    let lsdl = lsdl(&iso);
    let mut seen = BTreeSet::new();
    for line in lsdl.lines() {
        let Some((head, quoted)) = line.split_once(" '/") else { continue };
        let (path, target) = match quoted.split_once("' -> '") {
            Some((p, t)) => (p.to_owned(), Some(t.trim_end_matches('\'').to_owned())),
            None => (quoted.trim_end_matches('\'').to_owned(), None),
        };
        let path = if path.is_empty() { ".".to_owned() } else { path };
        let e = &headers[&path];
        let f: Vec<&str> = head.split_whitespace().collect();
        assert_eq!(f[0], mode_string(e.mode, 'p', true), "{path}");
        assert_eq!((f[2].parse::<u32>().unwrap(), f[3].parse::<u32>().unwrap()), (e.uid, e.gid));
        match e.mode & 0o170000 {
            0o020000 | 0o060000 => {
                let (major, minor) = if e.rdev.0 <= 0xfff && e.rdev.1 <= 0xff {
                    (u64::from(e.rdev.0), u64::from(e.rdev.1))
                } else {
                    glibc_decode(u64::from(e.rdev.0), u64::from(e.rdev.1))
                };
                assert_eq!(f[4], format!("{major},{minor}"), "{path}");
            }
            0o100000 => assert_eq!(f[4], e.size.to_string(), "{path}"),
            _ => {}
        }
        assert_eq!(target, e.target, "{path}");
        seen.insert(path);
    }
    assert_eq!(seen.len(), headers.len());
}

fn sha256_tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(root.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let rel = rel.join(entry.file_name());
            let kind = entry.file_type().unwrap();
            let key = rel.to_string_lossy().into_owned();
            if kind.is_dir() {
                out.insert(key, "dir".to_owned());
                stack.push(rel);
            } else if kind.is_symlink() {
                let target = fs::read_link(entry.path()).unwrap();
                out.insert(key, format!("-> {}", target.display()));
            } else if kind.is_file() {
                let digest = Sha256::digest(fs::read(entry.path()).unwrap());
                out.insert(key, hex::encode(digest));
            }
        }
    }
    out
}

#[test]
fn bsdtar_extracts_what_the_cpio_holds() {
    let Some(vectors) = vectors() else { return };
    let Some(_) = tool_on_path("bsdtar") else { return };
    let dir = tempfile::tempdir().unwrap();
    let cpio = vectors.join("packing/sample.cpio");
    let iso = dir.path().join("x.iso");
    pack_iso(&cpio, &iso, &["--source-date-epoch=1800000000", "--allow-long-names"]);
    let mut trees = Vec::new();
    for (name, archive) in [("from-cpio", &cpio), ("from-iso", &iso)] {
        let out = dir.path().join(name);
        fs::create_dir(&out).unwrap();
        // Device nodes need root to extract; they are checked with isoinfo and xorriso.
        run_ok(
            Command::new("bsdtar")
                .args(["-x", "--exclude", "dev/*", "-f"])
                .arg(archive)
                .arg("-C")
                .arg(&out),
        );
        trees.push(sha256_tree(&out));
    }
    let (cpio_tree, mut iso_tree) = (trees.remove(0), trees.remove(0));
    // bsdtar 3.6 drops the `/` between the two SL entries of this target (xorriso's image too).
    let key = "etc/long-symlink".to_owned();
    let want = cpio_tree[&key].clone();
    let quirk = want.replacen(&format!("{}/", "x".repeat(150)), &"x".repeat(150), 1);
    if iso_tree.get(&key) == Some(&quirk) {
        iso_tree.insert(key, want);
    }
    assert_eq!(iso_tree, cpio_tree);
}

#[test]
fn same_cpio_gives_same_image() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cpio = vectors.join("packing/sample.cpio");
    let a = dir.path().join("a.iso");
    let b = dir.path().join("sub/b.iso");
    fs::create_dir(dir.path().join("sub")).unwrap();
    pack_iso(&cpio, &a, &["--source-date-epoch=1700000000", "--allow-long-names"]);
    pack_iso(&cpio, &b, &["--source-date-epoch=1700000000", "--allow-long-names"]);
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
    // Without --allow-long-names the 255-byte name is refused and nothing is written.
    let c = dir.path().join("c.iso");
    let err = run_err(
        secretvm().args(["pack", "iso", "--source-date-epoch=0"]).arg(&cpio).arg("-o").arg(&c),
    );
    assert!(err.contains("its name is 255 bytes, more than 253"), "{err}");
    assert!(!c.exists());
}

#[test]
fn gcp_tarball_lists_and_extracts() {
    let (Some(_), Some(_)) = (tool_on_path("tar"), tool_on_path("bsdtar")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("rootfs.wic");
    let mut bytes = vec![0u8; 3 << 20];
    bytes[5000..5010].copy_from_slice(b"secretvm!!");
    bytes[(2 << 20) + 7] = 1;
    fs::write(&disk, &bytes).unwrap();
    for sparse in [true, false] {
        let out = dir.path().join(format!("rootfs-{sparse}.wic.tar.gz"));
        let mut cmd = secretvm();
        cmd.args(["pack", "gcp-tar"]).arg(&disk).arg("-o").arg(&out);
        cmd.arg("--source-date-epoch=1650000000");
        if !sparse {
            cmd.arg("--no-sparse");
        }
        run_ok(&mut cmd);
        // GNU tar's view: one member, mode 0644, owner 0/0, the real size, 2022-04-15 05:20 UTC.
        let listing = stdout(
            Command::new("tar").env("TZ", "UTC").args(["--numeric-owner", "-tvzf"]).arg(&out),
        );
        let listing: Vec<&str> = listing.split_whitespace().collect();
        let size = (3 << 20).to_string();
        assert_eq!(listing, ["-rw-r--r--", "0/0", &size, "2022-04-15", "05:20", "disk.raw"]);
        // GNU tar and bsdtar both extract the same bytes.
        for tool in ["tar", "bsdtar"] {
            let x = dir.path().join(format!("x-{tool}-{sparse}"));
            fs::create_dir(&x).unwrap();
            run_ok(Command::new(tool).args(["-xzf"]).arg(&out).arg("-C").arg(&x));
            assert!(fs::read(x.join("disk.raw")).unwrap() == bytes, "{tool} sparse={sparse}");
        }
        // gzip without a name and with mtime 0 (RFC 1952: MTIME at bytes 4..8, FLG at byte 3).
        let gz = fs::read(&out).unwrap();
        assert_eq!(gz[3], 0);
        assert_eq!(&gz[4..8], &[0, 0, 0, 0]);
        // The member type: `S` (old-GNU sparse) or `0` (GNU tar's src/tar.h).
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut tar).unwrap();
        assert_eq!(tar[156], if sparse { b'S' } else { b'0' });
        assert_eq!(tar.len() % 10240, 0);
        if sparse {
            // Two data runs of one block each are stored, not 3 MiB.
            assert!(tar.len() < 16 * 1024, "{} bytes", tar.len());
        }
    }
}

/// The guest's program: load the drivers, mount our ISO, print a manifest of what Linux shows,
/// then stack an overlayfs with a tmpfs upper layer on it, write through it and read back.
const ISO_INIT: &str = r#"#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk cdrom isofs overlay; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko
done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mount -t iso9660 -o ro /dev/vda /mnt || echo MOUNT-FAILED
echo BEGIN manifest
cd /mnt
find . | while read -r f; do
  if [ -L "$f" ]; then what="-> $(readlink "$f")"
  elif [ -f "$f" ]; then what=$(sha256sum "$f" | cut -d' ' -f1)
  else what=-; fi
  echo "$(stat -c '%f %h %u %g %s %Y %t:%T' "$f")|$f|$what"
done
cd /
echo END manifest
mkdir /ovl
mount -t tmpfs tmpfs /ovl
mkdir /ovl/upper /ovl/work /ovl/merged
mount -t overlay overlay -o lowerdir=/mnt,upperdir=/ovl/upper,workdir=/ovl/work /ovl/merged || echo OVERLAY-FAILED
echo 'written through the overlay' > /ovl/merged/etc/new-file
echo 'appended' >> /ovl/merged/etc/hello.txt
sync
echo 3 > /proc/sys/vm/drop_caches
echo BEGIN overlay
cat /ovl/merged/etc/new-file
cat /ovl/merged/etc/hello.txt
cat /ovl/upper/etc/new-file
cat /mnt/etc/hello.txt
echo END overlay
echo SECRETVM-ISO-DONE
poweroff -f
"#;

/// sample.cpio without the entries Linux cannot show faithfully: the 255-byte name (Linux stops
/// collecting NM pieces before 254 bytes; see `../shared/docs/packing.md`).
fn linux_readable_sample(cpio: &[u8]) -> Vec<u8> {
    use secretvm_pack::cpio::{Format, Reader, Writer};
    use std::io::Read;
    let mut reader = Reader::new(cpio);
    let mut writer = Writer::new(Vec::new(), Format::Newc);
    while let Some(mut entry) = reader.next_entry().unwrap() {
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if header.name.rsplit('/').next().is_some_and(|n| n.len() > 253) {
            continue;
        }
        writer.append(&header, &data[..]).unwrap();
    }
    writer.finish().unwrap()
}

#[test]
fn linux_mounts_our_iso_and_overlays_it() {
    let Some(vectors) = vectors() else { return };
    let Some(guest) = crate::boot::Guest::from_env() else { return };
    let Some(_) = tool_on_path("bsdtar") else { return };
    const EPOCH: u64 = 1_650_000_000;
    let dir = tempfile::tempdir().unwrap();
    let cpio = dir.path().join("rootfs.cpio");
    fs::write(
        &cpio,
        linux_readable_sample(&fs::read(vectors.join("packing/sample.cpio")).unwrap()),
    )
    .unwrap();
    let iso = dir.path().join("rootfs.iso");
    pack_iso(&cpio, &iso, &[&format!("--source-date-epoch={EPOCH}")]);

    let mut extra = String::new();
    for module in ["cdrom", "isofs", "overlay"] {
        if let Some(path) = crate::boot::find_module(guest.modules(), module) {
            extra.push_str(&format!("file /lib/modules/{module}.ko {} 0644 0 0\n", path.display()));
        }
    }
    let spec = guest.spec(dir.path(), ISO_INIT, &extra);
    let initrd = dir.path().join("initramfs.cpio.gz");
    run_ok(
        crate::support::secretvm()
            .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
            .args(["pack", "initramfs", "--spec"])
            .arg(&spec)
            .arg("-o")
            .arg(&initrd),
    );
    let console = guest.boot_with_drive(
        &initrd,
        &format!("file={},if=virtio,format=raw,readonly=on", iso.display()),
    );
    assert!(console.contains("SECRETVM-ISO-DONE"), "the init did not finish; console:\n{console}");
    assert!(!console.contains("MOUNT-FAILED"), "console:\n{console}");

    // The expected manifest: metadata from the independent decoder's listing of sample.cpio,
    // contents hashed from bsdtar's extraction of the same cpio.
    let headers =
        cpio_headers(&fs::read_to_string(vectors.join("packing/sample.cpio.headers.txt")).unwrap());
    let extracted = dir.path().join("extracted");
    fs::create_dir(&extracted).unwrap();
    run_ok(
        Command::new("bsdtar")
            .args(["-x", "--exclude", "dev/*", "-f"])
            .arg(&cpio)
            .arg("-C")
            .arg(&extracted),
    );
    let contents = sha256_tree(&extracted);
    let mut want = BTreeMap::new();
    for (path, e) in
        headers.iter().filter(|(p, _)| p.rsplit('/').next().is_some_and(|n| n.len() <= 253))
    {
        let kind = e.mode & 0o170000;
        let what = match kind {
            0o120000 => format!("-> {}", e.target.clone().unwrap_or_default()),
            0o100000 => contents[path.as_str()].clone(),
            _ => "-".to_owned(),
        };
        // A directory's size is its extent length in the image, not something the cpio holds.
        let size = if kind == 0o040000 { "DIR".to_owned() } else { e.size.to_string() };
        let size = if kind == 0o120000 {
            e.target.as_ref().map_or(0, String::len).to_string()
        } else {
            size
        };
        let mtime = u64::from(e.mtime).min(EPOCH);
        let key = if path == "." { ".".to_owned() } else { format!("./{path}") };
        want.insert(
            key,
            format!(
                "{:x} {} {} {} {size} {mtime} {:x}:{:x}|{what}",
                e.mode, e.nlink, e.uid, e.gid, e.rdev.0, e.rdev.1
            ),
        );
    }
    let mut got = BTreeMap::new();
    for line in crate::boot::section(&console, "manifest") {
        let mut parts = line.splitn(3, '|');
        let (Some(stat), Some(path), Some(what)) = (parts.next(), parts.next(), parts.next())
        else {
            panic!("bad manifest line {line:?}")
        };
        let mut fields: Vec<String> = stat.split(' ').map(str::to_owned).collect();
        if fields[0].starts_with('4') {
            assert_eq!(fields[4].parse::<u64>().unwrap() % 2048, 0, "{path}: {line}");
            fields[4] = "DIR".to_owned();
        }
        got.insert(path.to_owned(), format!("{}|{what}", fields.join(" ")));
    }
    assert!(want.len() > 300, "{} expected entries", want.len());
    assert_eq!(got, want, "console:\n{console}");

    let hello = String::from_utf8(fs::read(extracted.join("etc/hello.txt")).unwrap()).unwrap();
    let overlay = crate::boot::section(&console, "overlay").join("\n");
    let expected = format!(
        "written through the overlay\n{hello}appended\nwritten through the overlay\n{}",
        hello.trim_end_matches('\n')
    );
    assert_eq!(overlay, expected, "console:\n{console}");
}

/// A generated tree that stresses ISO 9660 naming (dots in directory names, case and prefix
/// collisions, long names and extensions, a thousand colliding names in one directory), hard
/// links across directories, long symlink targets, deep directories and block-boundary sizes.
fn generated_tree() -> Vec<secretvm_pack::initramfs::Node<Vec<u8>>> {
    use secretvm_pack::initramfs::{Kind, Node};
    let node = |path: &str, kind: Kind<Vec<u8>>, permissions: u32| Node {
        path: path.to_owned(),
        kind,
        permissions,
        uid: 1000,
        gid: 100,
        mtime: 1_700_000_000,
        link_group: None,
    };
    let dir = |path: &str| node(path, Kind::Directory, 0o755);
    let file = |path: &str, len: usize| {
        let data = (0..len).map(|i| (i * 7 + path.len()) as u8).collect();
        node(path, Kind::File { source: data }, 0o644)
    };
    let link =
        |path: &str, target: &str| node(path, Kind::Symlink { target: target.to_owned() }, 0o777);
    let mut nodes = vec![dir(".")];
    let top = [
        "etc",
        "lib.d",
        "python3.11",
        "gettext-0.21",
        "a.b.c.d",
        "UPPER",
        "upper",
        "dir with space",
        "trailing.",
        ".hidden-dir",
        "google-cloud-cli-app-engine-python",
        "google-cloud-cli-app-engine-python-extras",
        "many",
    ];
    let sizes = [0, 1, 5, 2047, 2048, 2049, 10_000, 70_000];
    for (d, name) in top.iter().enumerate() {
        nodes.push(dir(name));
        if *name == "many" {
            continue;
        }
        let patterns = [
            "file-{}.txt",
            "{}.tar.gz",
            "README{}",
            "readme{}",
            "noext-{}",
            ".dotfile{}",
            "many.dots.{}.in.name",
            "grüße-日本語-{}.txt",
            "semi;colon{}",
            "this-name-is-longer-than-thirty-characters-{}.configuration",
            "x{}.verylongextension",
        ];
        for (p, pattern) in patterns.iter().enumerate() {
            let base = pattern.replace("{}", &(p % 3).to_string());
            nodes.push(file(&format!("{name}/{base}"), sizes[(d + p) % sizes.len()]));
        }
        nodes.push(link(&format!("{name}/rel-link"), "../etc/file-0.txt"));
        nodes.push(link(&format!("{name}/abs-link"), "/etc/./file-1.txt"));
        let long = format!("/{}/{}/{}", "x".repeat(100), "y".repeat(200), "z".repeat(120));
        nodes.push(link(&format!("{name}/long-link"), &long));
    }
    for i in 0..1000 {
        let name = format!("many/common-prefix-that-is-long-enough-to-truncate-{i:04}");
        nodes.push(file(&name, i % 3));
    }
    let mut deep = String::from("deep");
    nodes.push(dir(&deep));
    for level in 2..=12 {
        deep = format!("{deep}/level-{level}.d");
        nodes.push(dir(&deep));
    }
    nodes.push(file(&format!("{deep}/leaf.txt"), 3000));
    let mut private = dir("etc/private");
    private.permissions = 0o700;
    nodes.push(private);
    nodes.push(node("etc/fifo", Kind::Fifo, 0o600));
    for path in ["etc/hl-1", "lib.d/hl-2", "deep/hl-3"] {
        let mut member = file(path, 0);
        member.kind = Kind::File { source: vec![b'h'; 4097] };
        member.link_group = Some(1);
        nodes.push(member);
    }
    nodes
}

#[test]
fn generated_tree_equals_xorriso_bytes() {
    let (Some(_), Some(_)) = (tool_on_path("xorriso"), tool_on_path("cpio")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let cpio = dir.path().join("tree.cpio");
    let options =
        secretvm_pack::initramfs::Options { epoch: 1_700_000_000, owner: None, gzip_level: None };
    let open = |data: &Vec<u8>| Ok((data.len() as u64, std::io::Cursor::new(data.clone())));
    let archive =
        secretvm_pack::initramfs::write(generated_tree(), &options, open, Vec::new()).unwrap();
    fs::write(&cpio, archive).unwrap();

    // The upstream path: extract with GNU cpio, then xorriso with the upstream flags.
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    run_ok(Command::new("cpio").args(["-idm", "--quiet", "-F"]).arg(&cpio).current_dir(&tree));
    let xorriso_iso = dir.path().join("xorriso.iso");
    run_ok(
        Command::new("xorriso")
            .env("SOURCE_DATE_EPOCH", "1650000000")
            // xorriso maps a non-ASCII name to ISO 9660 characters per character of the
            // locale's charset: one `_` per character in UTF-8, one per byte in the C locale.
            // The upstream builder runs it under en_US.UTF-8, so the reference is a UTF-8 one,
            // whatever the locale this test runs in.
            .env("LC_ALL", "C.UTF-8")
            .args(["-preparer_id", "xorriso", "-volume_date", "all", "=1650000000"])
            .args(["-volume_date", "all_file_dates", "=1650000000", "-padding", "0"])
            .args(["-as", "mkisofs", "-iso-level", "3", "-graft-points"])
            .args(["-full-iso9660-filenames", "-uid", "0", "-gid", "0", "-output"])
            .arg(&xorriso_iso)
            .arg(".")
            .current_dir(&tree),
    );
    let ours = dir.path().join("ours.iso");
    pack_iso(&cpio, &ours, UPSTREAM);
    let (a, b) = (fs::read(&ours).unwrap(), fs::read(&xorriso_iso).unwrap());
    if a != b {
        let first = a.iter().zip(&b).position(|(x, y)| x != y);
        let plain = |iso: &Path| stdout(Command::new("isoinfo").args(["-l", "-i"]).arg(iso));
        panic!(
            "sizes {} and {}, first difference at {first:?}\nours:\n{}\nxorriso:\n{}",
            a.len(),
            b.len(),
            plain(&ours),
            plain(&xorriso_iso)
        );
    }
}
