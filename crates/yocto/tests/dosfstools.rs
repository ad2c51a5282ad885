//! The layer's dosfstools patch (`meta-secret/recipes-devtools/dosfstools/`), which makes
//! mkfs.fat take its time from `SOURCE_DATE_EPOCH`, on the release poky builds:
//!
//! - the tarball is Debian's `dosfstools_4.2.orig.tar.gz` (`SECRETVM_DOSFSTOOLS_SOURCE`, from
//!   `cargo xtask deps`), whose SHA-256 must be the `SRC_URI[sha256sum]` of poky scarthgap's
//!   `dosfstools_4.2.bb`, so it is the source BitBake patches;
//! - the patch applies to it (`git apply`), and mkfs.fat builds from it;
//! - with `SOURCE_DATE_EPOCH` set, two runs in different time zones make the same image, whose
//!   volume label entry carries that time in UTC as FAT encodes it (the expected fields come
//!   from `date -u`) and whose volume id is derived from it; `-i` still sets the id;
//! - without it, two runs make different images (the comparison can fail), and a malformed
//!   value stops mkfs.fat, naming the variable.
//!
//! The patch's effect on a whole disk was checked by hand with poky's own wic (see
//! `meta-secret/README.md`).

#![allow(clippy::disallowed_methods, clippy::print_stderr)]

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use secretvm_testkit::{tool_from_env, workspace};
use sha2::{Digest, Sha256};

/// `SRC_URI[sha256sum]` of poky scarthgap's `meta/recipes-devtools/dosfstools/dosfstools_4.2.bb`
/// (at 72983ac, the pinned commit).
const POKY_SHA256: &str = "64926eebf90092dca21b14259a5301b7b98e7b1943e8a201c7d726084809b527";

const PATCH: &str = "meta-secret/recipes-devtools/dosfstools/files/0001-mkfs.fat-take-the-time-from-SOURCE_DATE_EPOCH.patch";

/// 2023-11-14 22:13:20 UTC.
const EPOCH: &str = "1700000000";

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds the patched mkfs.fat in `dir` and returns its path.
fn build(tarball: &Path, dir: &Path) -> std::path::PathBuf {
    run(Command::new("tar").arg("-xzf").arg(tarball).arg("-C").arg(dir));
    let src = dir.join("dosfstools-4.2");
    run(Command::new("git").arg("apply").arg(workspace().join(PATCH)).current_dir(&src));
    run(Command::new("./configure").args(["--quiet", "--without-iconv"]).current_dir(&src));
    run(Command::new("make").args(["--silent", "-C", "src", "mkfs.fat"]).current_dir(&src));
    src.join("src/mkfs.fat")
}

/// Makes a 1 MiB FAT image labelled `SECRETVM` at `image` with `extra` arguments before it,
/// in the environment `env` (applied to a cleared `SOURCE_DATE_EPOCH` and `TZ`).
fn mkfs(mkfs: &Path, image: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(mkfs);
    cmd.env_remove("SOURCE_DATE_EPOCH").env_remove("TZ");
    cmd.envs(env.iter().copied()).args(extra).args(["-n", "SECRETVM", "-C"]).arg(image).arg("1024");
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// The volume label entry of a FAT12/16 image (the first entry of the root directory, which
/// starts after the reserved sectors and the FATs) and the boot sector's volume id.
fn label_entry(image: &[u8]) -> (&[u8], u32) {
    let bytes_per_sector = usize::from(u16_at(image, 11));
    let reserved = usize::from(u16_at(image, 14));
    let fats = usize::from(image[16]);
    let fat_sectors = usize::from(u16_at(image, 22));
    assert!(fat_sectors > 0, "not FAT12/16: {fat_sectors} sectors per FAT in the BPB");
    let root = (reserved + fats * fat_sectors) * bytes_per_sector;
    let id = u32::from_le_bytes(image[39..43].try_into().unwrap());
    (&image[root..root + 32], id)
}

#[test]
fn mkfs_fat_takes_its_time_from_source_date_epoch() {
    let Some(tarball) = tool_from_env("SECRETVM_DOSFSTOOLS_SOURCE") else { return };
    let digest = hex::encode(Sha256::digest(fs::read(&tarball).unwrap()));
    assert_eq!(digest, POKY_SHA256, "{} is not the tarball poky builds", tarball.display());
    let tmp = tempfile::tempdir().unwrap();
    let mkfs_fat = build(&tarball, tmp.path());
    let image = |name: &str| tmp.path().join(name);

    // With SOURCE_DATE_EPOCH: the same bytes in two time zones, a second or more apart. The
    // second zone must really be one (without its zone file the C library falls back to UTC,
    // and the comparison would prove nothing).
    let offset = run(Command::new("date").env("TZ", "Asia/Tokyo").args(["-d", "@0", "+%z"]));
    assert_eq!(String::from_utf8_lossy(&offset.stdout).trim(), "+0900", "no zone file for Tokyo");
    for (name, tz) in [("utc.img", "UTC"), ("tokyo.img", "Asia/Tokyo")] {
        let out = mkfs(&mkfs_fat, &image(name), &[], &[("SOURCE_DATE_EPOCH", EPOCH), ("TZ", tz)]);
        assert!(out.status.success(), "{out:?}");
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let utc = fs::read(image("utc.img")).unwrap();
    assert_eq!(utc, fs::read(image("tokyo.img")).unwrap(), "the image depends on the time");

    // The label entry: the name, the volume attribute, and the time in FAT's encoding.
    let (entry, volume_id) = label_entry(&utc);
    assert_eq!(&entry[..11], b"SECRETVM   ");
    assert_eq!(entry[11], 0x08, "not a volume label entry");
    let date =
        run(Command::new("date").args(["-u", "-d", &format!("@{EPOCH}"), "+%Y %m %d %H %M %S"]));
    let f: Vec<u16> = String::from_utf8(date.stdout)
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    // FAT: date = (year - 1980) << 9 | month << 5 | day, time = hour << 11 | minute << 5 |
    // second / 2.
    let fat_date = ((f[0] - 1980) << 9) | (f[1] << 5) | f[2];
    let fat_time = (f[3] << 11) | (f[4] << 5) | (f[5] / 2);
    assert_eq!((u16_at(entry, 24), u16_at(entry, 22)), (fat_date, fat_time), "modification");
    assert_eq!((u16_at(entry, 16), u16_at(entry, 14)), (fat_date, fat_time), "creation");
    assert_eq!(volume_id, EPOCH.parse::<u32>().unwrap(), "the volume id is not the epoch's");

    // An explicit id still wins.
    let out =
        mkfs(&mkfs_fat, &image("id.img"), &["-i", "0A0B0C0D"], &[("SOURCE_DATE_EPOCH", EPOCH)]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(label_entry(&fs::read(image("id.img")).unwrap()).1, 0x0A0B_0C0D);

    // Without it the clock decides (the volume id has microseconds in it), so the images differ.
    for name in ["clock-1.img", "clock-2.img"] {
        assert!(mkfs(&mkfs_fat, &image(name), &[], &[]).status.success());
    }
    assert_ne!(fs::read(image("clock-1.img")).unwrap(), fs::read(image("clock-2.img")).unwrap());

    // A value that is not a number of seconds stops it.
    for bad in ["12x", "-5", " 1"] {
        let out = mkfs(&mkfs_fat, &image("bad.img"), &[], &[("SOURCE_DATE_EPOCH", bad)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains("SOURCE_DATE_EPOCH"), "{bad:?}: {out:?}");
    }
}
