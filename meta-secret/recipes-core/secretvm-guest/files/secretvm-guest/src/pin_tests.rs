//! Tests of `pin-os-image`'s parts that run without a kernel of our own: the hash tree against
//! cryptsetup's `veritysetup format` (an independent implementation of the same format), and
//! every structure and constant handed to the kernel against the kernel's UAPI headers,
//! compiled by the C compiler. The mapping itself (device-mapper, loop, memfd) is exercised by
//! the boot tests of the initramfs (`crates/cli/tests/guest_init.rs`), where a real kernel
//! reads the mapped image and refuses a changed block.
//!
//! Without `veritysetup` or a C compiler these tests fail under `CI=true` and are skipped,
//! saying why, elsewhere.

// The references are programs: veritysetup, sha256sum and the C compiler.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::pin::{parse_fs_block, pin};
use super::sys::*;
use super::verity::{self, TreeError};
use super::*;
use crate::tests::args;

/// The program `name` on PATH or in the sbin directories; None (after saying why) when it is
/// missing outside CI; a failure in CI.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is needed by this test in CI (cargo xtask deps installs it)"
        );
        eprintln!("skipped: {name} is not installed");
    }
    found
}

/// Reproducible bytes that are not all alike (xorshift64).
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// veritysetup's root hash and hash device for `data`.
fn veritysetup(tool: &Path, data: &[u8], block: u64, salt: &[u8]) -> (String, Vec<u8>) {
    let dir = crate::tests::scratch();
    fs::write(dir.join("data"), data).unwrap();
    fs::write(dir.join("hash"), []).unwrap();
    let salt = if salt.is_empty() { "-".to_owned() } else { hex(salt) };
    let out = Command::new(tool)
        .args(["format", "--no-superblock", "--hash=sha256", "--hash-block-size=4096"])
        .arg(format!("--data-block-size={block}"))
        .arg(format!("--salt={salt}"))
        .arg(dir.join("data"))
        .arg(dir.join("hash"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let root = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .unwrap_or_else(|| panic!("no root hash in {stdout}"))
        .trim()
        .to_owned();
    (root, fs::read(dir.join("hash")).unwrap())
}

fn sha256sum(data: &[u8]) -> String {
    let dir = crate::tests::scratch();
    fs::write(dir.join("data"), data).unwrap();
    let out = Command::new("sha256sum").arg(dir.join("data")).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}

#[test]
fn the_tree_is_the_one_veritysetup_writes() {
    let Some(veritysetup_path) = tool("veritysetup") else { return };
    let salt = bytes(32, 7);
    // Level counts 0 to 3: one data block (the root is its digest), one hash block exactly,
    // one more, a full second level, and one block into a third level; each data block size.
    for (block, blocks, salt) in [
        (512, 1, &salt[..]),
        (512, 2, &salt[..]),
        (4096, 128, &salt[..]),
        (1024, 129, &salt[..]),
        (2048, 128 * 128, &salt[..]),
        (512, 128 * 128 + 1, &salt[..]),
        (4096, 1000, &[][..]),
    ] {
        let data = bytes(block as usize * blocks, blocks as u64);
        let tree = verity::build(&mut &data[..], data.len() as u64, block, salt).unwrap();
        let (root, hash_device) = veritysetup(&veritysetup_path, &data, block, salt);
        assert_eq!(hex(&tree.root), root, "{block} x {blocks}");
        assert!(tree.hash_device == hash_device, "{block} x {blocks}: the hash devices differ");
        assert_eq!(tree.data_blocks, blocks as u64);
        assert_eq!(tree.data_block, block);
        assert_eq!(hex(&tree.image_sha256), sha256sum(&data), "{block} x {blocks}");
    }
}

/// The image is read 1 MiB at a time; an end in the first chunk, inside a later one, or just
/// after a whole chunk is reported at its own offset.
#[test]
fn an_image_shorter_than_its_size_is_an_error_at_the_offset_it_ends() {
    const MIB: usize = 1 << 20;
    for (have, size) in [(3 * 2048, 4 * 2048), (3 * MIB + 2048, 4 * MIB), (2 * MIB, 2 * MIB + 2048)]
    {
        let data = bytes(have, 1);
        let Err(TreeError::Short(at)) = verity::build(&mut &data[..], size as u64, 2048, &[])
        else {
            panic!("a short image was hashed: {have} of {size} bytes");
        };
        assert_eq!(at, have as u64);
    }
}

#[test]
fn a_read_error_is_reported_at_its_offset() {
    /// Gives as many zero bytes as it holds, at most 1000 per read, then fails.
    struct FailsAt(usize);
    impl std::io::Read for FailsAt {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0).min(1000);
            if n == 0 {
                return Err(std::io::Error::other("the device went away"));
            }
            buf[..n].fill(0);
            self.0 -= n;
            Ok(n)
        }
    }
    for at in [0, 5000, (1 << 20) + 5000, 3 << 20] {
        let result = verity::build(&mut FailsAt(at), 4 << 20, 4096, &[]);
        let Err(TreeError::Read(offset, error)) = result else {
            panic!("a failing read at {at} was not reported: {result:?}");
        };
        assert_eq!((offset, error.to_string().as_str()), (at as u64, "the device went away"));
    }
}

#[test]
fn the_data_block_is_the_largest_no_larger_than_the_file_systems_that_divides_the_image() {
    for (size, fs_block, expected) in [
        (2048 * 3, 2048, Some(2048)),
        (4096 * 5, 4096, Some(4096)),
        (4096 * 5, 65536, Some(4096)),
        (2048 * 5, 4096, Some(2048)),
        (512 * 3, 4096, Some(512)),
        (8192, 1024, Some(1024)),
        (1000, 4096, None),
        (8192, 256, None),
    ] {
        assert_eq!(verity::data_block_for(size, fs_block), expected, "{size} {fs_block}");
    }
}

#[test]
fn the_file_system_block_must_be_a_power_of_two_of_at_least_512() {
    assert_eq!(parse_fs_block("2048").unwrap(), 2048);
    for bad in ["", "0", "256", "3000", "-2048", "2k"] {
        assert!(matches!(parse_fs_block(bad), Err(Error::Usage(_))), "{bad:?}");
    }
}

#[test]
fn pin_usage_errors() {
    for (words, expected) in [
        (&["pin-os-image", "/dev/sr0"][..], "pin-os-image takes a device"),
        (&["pin-os-image", "/dev/sr0", "os", "2048", "x"][..], "pin-os-image takes a device"),
        (&["pin-os-image", "/dev/sr0", "os", "1000"][..], "expected a power of two"),
        (
            &["pin-os-image", "/dev/sr0", "os", "2048", "--measurements", "/tmp"][..],
            "--measurements does not apply",
        ),
    ] {
        let Err(Error::Usage(message)) = run(&args(words)) else { panic!("{words:?} ran") };
        assert!(message.contains(expected), "{words:?}: {message}");
    }
}

#[test]
fn only_a_block_device_is_pinned() {
    let dir = crate::tests::scratch();
    let file = dir.join("image");
    fs::write(&file, [0u8; 4096]).unwrap();
    let error = pin(&file, "secret-vm-os", 2048).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("cannot pin the OS image {}: ", file.display())),
        "{message}"
    );
    assert!(message.contains("is not a block device"), "{message}");
    let error = pin(&dir.join("missing"), "secret-vm-os", 2048).unwrap_err();
    assert!(error.to_string().contains("cannot open"), "{error}");
}

#[test]
fn a_device_mapper_name_is_checked_before_the_kernel_is_asked() {
    for bad in [String::new(), "a/b".into(), "x".repeat(DM_NAME_LEN)] {
        let error = dm_create(&bad, 8, "verity", "").unwrap_err();
        assert!(error.to_string().contains("is not a device-mapper name"), "{bad:?}: {error}");
    }
}

/// The requests as the kernel reads them: a dm_ioctl header with the payload after it, and a
/// target spec whose parameters end in a NUL inside the 8-byte-aligned spec.
#[test]
fn device_mapper_requests_put_each_field_where_the_kernel_reads_it() {
    let spec = dm_target(4096, "verity", "1 2 3");
    assert_eq!(spec.len(), 48);
    assert_eq!(&spec[DM_SPEC_LENGTH..DM_SPEC_LENGTH + 8], &4096u64.to_ne_bytes());
    assert_eq!(&spec[DM_SPEC_NEXT..DM_SPEC_NEXT + 4], &48u32.to_ne_bytes());
    assert_eq!(&spec[DM_SPEC_TYPE..DM_SPEC_TYPE + 7], b"verity\0");
    assert_eq!(&spec[DM_SPEC_SIZE..], b"1 2 3\0\0\0");
    let request = dm_request("secret-vm-os", DM_READONLY_FLAG, 1, &spec);
    assert_eq!(request.len(), DM_IOCTL_SIZE + 48);
    assert_eq!(&request[..12], [4u32, 0, 0].map(u32::to_ne_bytes).concat());
    assert_eq!(&request[DM_DATA_SIZE..DM_DATA_SIZE + 4], &(request.len() as u32).to_ne_bytes());
    assert_eq!(&request[DM_DATA_START..DM_DATA_START + 4], &(DM_IOCTL_SIZE as u32).to_ne_bytes());
    assert_eq!(&request[DM_TARGET_COUNT..DM_TARGET_COUNT + 4], &1u32.to_ne_bytes());
    assert_eq!(&request[DM_FLAGS..DM_FLAGS + 4], &1u32.to_ne_bytes());
    assert_eq!(&request[DM_NAME..DM_NAME + 13], b"secret-vm-os\0");
    assert_eq!(&request[DM_IOCTL_SIZE..], &spec[..]);
    let config = loop_config(9);
    assert_eq!(&config[..4], &9u32.to_ne_bytes());
    assert_eq!(&config[LOOP_CONFIG_FLAGS..LOOP_CONFIG_FLAGS + 4], &5u32.to_ne_bytes());
    assert!(
        config[4..LOOP_CONFIG_FLAGS]
            .iter()
            .chain(&config[LOOP_CONFIG_FLAGS + 4..])
            .all(|&b| b == 0)
    );
}

/// The kernel's `new_encode_dev(MKDEV(253, 300))`, worked by hand from
/// `include/linux/kdev_t.h`: `(300 & 0xff) | (253 << 8) | ((300 & ~0xff) << 12)`.
#[test]
fn device_mappers_device_number_is_decoded_as_the_kernel_encodes_it() {
    assert_eq!(split_kernel_dev(0x2c | 0xfd00 | 0x10_0000), (253, 300));
    assert_eq!(split_kernel_dev(0xfd00), (253, 0));
}

/// Every size, offset and number above, printed by a C program built against the kernel's UAPI
/// headers and the C library's.
#[test]
fn the_kernel_interface_matches_the_uapi_headers() {
    let Some(cc) = tool("cc") else { return };
    let dir = crate::tests::scratch();
    let source = r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <linux/dm-ioctl.h>
#include <linux/loop.h>
#define P(name, value) printf("%s %llu\n", name, (unsigned long long)(value))
int main(void) {
    P("DM_IOCTL_SIZE", sizeof(struct dm_ioctl));
    P("DM_DATA_SIZE", offsetof(struct dm_ioctl, data_size));
    P("DM_DATA_START", offsetof(struct dm_ioctl, data_start));
    P("DM_TARGET_COUNT", offsetof(struct dm_ioctl, target_count));
    P("DM_FLAGS", offsetof(struct dm_ioctl, flags));
    P("DM_DEV", offsetof(struct dm_ioctl, dev));
    P("DM_NAME", offsetof(struct dm_ioctl, name));
    P("DM_NAME_LEN", DM_NAME_LEN);
    P("DM_SPEC_SIZE", sizeof(struct dm_target_spec));
    P("DM_SPEC_LENGTH", offsetof(struct dm_target_spec, length));
    P("DM_SPEC_NEXT", offsetof(struct dm_target_spec, next));
    P("DM_SPEC_TYPE", offsetof(struct dm_target_spec, target_type));
    P("DM_READONLY_FLAG", DM_READONLY_FLAG);
    P("DM_DEV_CREATE", DM_DEV_CREATE);
    P("DM_DEV_REMOVE", DM_DEV_REMOVE);
    P("DM_DEV_SUSPEND", DM_DEV_SUSPEND);
    P("DM_TABLE_LOAD", DM_TABLE_LOAD);
    P("DM_VERSION_MAJOR", DM_VERSION_MAJOR);
    P("LOOP_CONFIG_SIZE", sizeof(struct loop_config));
    P("LOOP_CONFIG_FLAGS", offsetof(struct loop_config, info.lo_flags));
    P("LOOP_CONFIGURE", LOOP_CONFIGURE);
    P("LOOP_CTL_GET_FREE", LOOP_CTL_GET_FREE);
    P("LO_FLAGS_READ_ONLY", LO_FLAGS_READ_ONLY);
    P("LO_FLAGS_AUTOCLEAR", LO_FLAGS_AUTOCLEAR);
    P("MFD_CLOEXEC", MFD_CLOEXEC);
    P("MFD_ALLOW_SEALING", MFD_ALLOW_SEALING);
    P("F_ADD_SEALS", F_ADD_SEALS);
    P("F_SEAL_SEAL", F_SEAL_SEAL);
    P("F_SEAL_SHRINK", F_SEAL_SHRINK);
    P("F_SEAL_GROW", F_SEAL_GROW);
    P("F_SEAL_WRITE", F_SEAL_WRITE);
    P("DEV_8_1", makedev(8, 1));
    P("DEV_259_300", makedev(259, 300));
    P("DEV_4097_1048575", makedev(4097, 1048575));
    return 0;
}
"#;
    fs::write(dir.join("uapi.c"), source).unwrap();
    let out =
        Command::new(cc).arg("-o").arg(dir.join("uapi")).arg(dir.join("uapi.c")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(dir.join("uapi")).output().unwrap();
    let c: BTreeMap<String, u64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (name, value) = l.split_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect();
    let ours: [(&str, u64); 31] = [
        ("DM_IOCTL_SIZE", DM_IOCTL_SIZE as u64),
        ("DM_DATA_SIZE", DM_DATA_SIZE as u64),
        ("DM_DATA_START", DM_DATA_START as u64),
        ("DM_TARGET_COUNT", DM_TARGET_COUNT as u64),
        ("DM_FLAGS", DM_FLAGS as u64),
        ("DM_DEV", DM_DEV as u64),
        ("DM_NAME", DM_NAME as u64),
        ("DM_NAME_LEN", DM_NAME_LEN as u64),
        ("DM_SPEC_SIZE", DM_SPEC_SIZE as u64),
        ("DM_SPEC_LENGTH", DM_SPEC_LENGTH as u64),
        ("DM_SPEC_NEXT", DM_SPEC_NEXT as u64),
        ("DM_SPEC_TYPE", DM_SPEC_TYPE as u64),
        ("DM_READONLY_FLAG", u64::from(DM_READONLY_FLAG)),
        ("DM_DEV_CREATE", DM_DEV_CREATE),
        ("DM_DEV_REMOVE", DM_DEV_REMOVE),
        ("DM_DEV_SUSPEND", DM_DEV_SUSPEND),
        ("DM_TABLE_LOAD", DM_TABLE_LOAD),
        ("DM_VERSION_MAJOR", u64::from(DM_VERSION[0])),
        ("LOOP_CONFIG_SIZE", LOOP_CONFIG_SIZE as u64),
        ("LOOP_CONFIG_FLAGS", LOOP_CONFIG_FLAGS as u64),
        ("LOOP_CONFIGURE", LOOP_CONFIGURE),
        ("LOOP_CTL_GET_FREE", LOOP_CTL_GET_FREE),
        ("LO_FLAGS_READ_ONLY", u64::from(LO_FLAGS_READ_ONLY)),
        ("LO_FLAGS_AUTOCLEAR", u64::from(LO_FLAGS_AUTOCLEAR)),
        ("MFD_CLOEXEC", u64::from(MFD_CLOEXEC)),
        ("MFD_ALLOW_SEALING", u64::from(MFD_ALLOW_SEALING)),
        ("F_ADD_SEALS", F_ADD_SEALS as u64),
        ("F_SEAL_SEAL", F_SEAL_SEAL as u64),
        ("F_SEAL_SHRINK", F_SEAL_SHRINK as u64),
        ("F_SEAL_GROW", F_SEAL_GROW as u64),
        ("F_SEAL_WRITE", F_SEAL_WRITE as u64),
    ];
    for (name, value) in ours {
        assert_eq!(c.get(name), Some(&value), "{name}");
    }
    for (name, major, minor) in
        [("DEV_8_1", 8, 1), ("DEV_259_300", 259, 300), ("DEV_4097_1048575", 4097, 1048575)]
    {
        assert_eq!(split_dev_t(c[name]), (major, minor), "{name}");
    }
}

/// The host sets the device's size; a tree that cannot be allocated is an error before any
/// byte is read, not an abort. 2^62 bytes in 512-byte blocks need a tree of about 2^58 bytes.
#[test]
fn a_tree_larger_than_memory_is_an_error() {
    /// Zeros without end, counting the reads.
    struct Zeros(usize);
    impl std::io::Read for Zeros {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0 += 1;
            buf.fill(0);
            Ok(buf.len())
        }
    }
    let mut image = Zeros(0);
    let Err(TreeError::TooLarge(bytes)) = verity::build(&mut image, 1 << 62, 512, &[]) else {
        panic!("a 2^62-byte image got a tree");
    };
    assert!(bytes > 1 << 57, "{bytes}");
    assert_eq!(image.0, 0, "read before the tree was allocated");
}
