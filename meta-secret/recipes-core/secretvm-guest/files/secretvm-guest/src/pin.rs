//! `pin-os-image`: measure the OS image and map it through dm-verity in one read.
//!
//! The OS image (the rootfs ISO, or GCP's root partition) is too large to copy into guest
//! memory, and the host can rewrite its device at any time. So the image is read once; every
//! byte goes into its SHA-256 (the measurement) and into a dm-verity hash tree kept in guest
//! memory (a sealed memfd behind a read-only loop device); and the image is mapped through that
//! tree as `/dev/mapper/<NAME>`. Every later read of the mapped device is checked against the
//! tree, so what the guest mounts is exactly what it measured, and a block the host changed
//! fails with an I/O error instead of being read.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use crate::sys;
use crate::verity::{self, HASH_BLOCK};
use crate::{Error, hex};

/// The salt's size: as veritysetup's default, one digest's worth of random bytes, which the host
/// does not know when it writes the image.
const SALT: usize = 32;

/// Where device-mapper names appear (udev's convention, which the init follows without udev).
const MAPPER: &str = "/dev/mapper";

fn fail(device: &Path, what: impl std::fmt::Display) -> Error {
    Error::Pin { device: device.into(), message: what.to_string() }
}

/// Pins block device `device`, which holds a file system with `fs_block`-byte blocks, as
/// device-mapper device `name` (`/dev/mapper/<name>`). Returns the image's SHA-256.
pub fn pin(device: &Path, name: &str, fs_block: u64) -> Result<[u8; 32], Error> {
    let mut image = File::open(device).map_err(|e| fail(device, format!("cannot open: {e}")))?;
    let (major, minor) = sys::device_number(&image, device).map_err(|e| fail(device, e))?;
    let size = image.seek(SeekFrom::End(0)).map_err(|e| fail(device, format!("no size: {e}")))?;
    image.seek(SeekFrom::Start(0)).map_err(|e| fail(device, format!("cannot seek: {e}")))?;
    if size == 0 {
        return Err(fail(device, "the image is empty"));
    }
    let Some(block) = verity::data_block_for(size, fs_block) else {
        return Err(fail(
            device,
            format!(
                "no dm-verity data block fits: the image has {size} bytes and its file system \
                 {fs_block}-byte blocks; expected a block of 512 to 4096 bytes, no larger than \
                 the file system's, that divides the image"
            ),
        ));
    };
    let mut salt = [0u8; SALT];
    File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut salt))
        .map_err(|e| fail(device, format!("cannot read a salt from /dev/urandom: {e}")))?;
    let tree = verity::build(&mut image, size, block, &salt).map_err(|e| fail(device, e))?;
    let memfd = sys::sealed_memfd(&format!("{name}.verity"), &tree.hash_device)
        .map_err(|e| fail(device, format!("the hash tree: {e}")))?;
    let (loop_device, loop_path, (loop_major, loop_minor)) =
        sys::attach_loop(&memfd).map_err(|e| fail(device, format!("the hash tree: {e}")))?;
    let table = format!(
        "1 {major}:{minor} {loop_major}:{loop_minor} {} {HASH_BLOCK} {} 0 sha256 {} {}",
        tree.data_block,
        tree.data_blocks,
        hex(&tree.root),
        hex(&salt)
    );
    let (_, dm_minor) = sys::dm_create(name, size / 512, "verity", &table).map_err(|e| {
        fail(device, format!("mapping it with its hash tree on {}: {e}", loop_path.display()))
    })?;
    // The table holds the loop device now; it detaches when the mapping goes.
    drop(loop_device);
    drop(memfd);
    link_mapped(name, dm_minor).map_err(|e| fail(device, e))?;
    Ok(tree.image_sha256)
}

/// Makes `/dev/mapper/<name>` a link to the device node devtmpfs created, `/dev/dm-<minor>`,
/// as udev would.
fn link_mapped(name: &str, minor: u32) -> Result<(), String> {
    let node = PathBuf::from(format!("/dev/dm-{minor}"));
    // devtmpfs creates the node when the disk is added; give it a moment all the same.
    for _ in 0..50 {
        if node.exists() {
            break;
        }
        sleep(Duration::from_millis(20));
    }
    let file =
        File::open(&node).map_err(|e| format!("the mapped device {}: {e}", node.display()))?;
    sys::device_number(&file, &node).map_err(|e| e.to_string())?;
    let link = Path::new(MAPPER).join(name);
    std::os::unix::fs::symlink(format!("../dm-{minor}"), &link)
        .map_err(|e| format!("cannot link {} to {}: {e}", link.display(), node.display()))
}

/// The file system block size, from the command line.
pub fn parse_fs_block(text: &str) -> Result<u64, Error> {
    text.parse::<u64>().ok().filter(|b| b.is_power_of_two() && *b >= 512).ok_or_else(|| {
        Error::Usage(format!(
            "the file system block size is {text:?}, expected a power of two of at least 512"
        ))
    })
}
