//! The dm-verity hash tree of an image, built in the same read that measures the image.
//!
//! The tree is dm-verity's format 1 with SHA-256 (the kernel's `Documentation/admin-guide/
//! device-mapper/verity.rst`, and what `veritysetup format --no-superblock` writes): every data
//! block is hashed as `sha256(salt || block)`; the digests, 32 bytes each, are packed 128 to a
//! 4096-byte hash block and the last block of a level is zero-filled; each level is hashed the
//! same way into the next until one block remains, and the root digest is the hash of that
//! block (of the single data block, if the image has one). On the hash device the levels are
//! stored from the top down, starting at block 0.
//!
//! Every byte read goes both into the tree and into the image's plain SHA-256, so the digest
//! that is measured and the tree the kernel checks later reads against come from the same
//! bytes: a device that changes between the two can no longer be read.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// The hash block size: one page, as veritysetup uses by default.
pub const HASH_BLOCK: usize = 4096;

/// The SHA-256 digest size.
pub const DIGEST: usize = 32;

/// The data block sizes the tree may use, largest first. dm-verity takes any power of two from
/// 512 up to the page size.
pub const DATA_BLOCKS: [u64; 4] = [4096, 2048, 1024, 512];

/// How much is read at a time: a multiple of every data block size.
const CHUNK: usize = 1 << 20;

/// An image's tree, ready for a dm-verity table.
#[derive(Debug, PartialEq, Eq)]
pub struct Tree {
    /// The SHA-256 of the whole image.
    pub image_sha256: [u8; DIGEST],
    /// The root digest.
    pub root: [u8; DIGEST],
    /// The hash device's contents: every level, the top one first.
    pub hash_device: Vec<u8>,
    /// The data block size.
    pub data_block: u64,
    /// The number of data blocks: the image's size over `data_block`.
    pub data_blocks: u64,
}

/// Why an image could not be hashed.
#[derive(Debug)]
pub enum TreeError {
    /// The image is shorter than its size said, at this byte offset.
    Short(u64),
    /// Reading failed at this byte offset.
    Read(u64, io::Error),
    /// The tree would take this many bytes, more than can be allocated.
    TooLarge(u64),
}

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TreeError::Short(at) => {
                write!(f, "the image ended at byte {at}, before the size it had when read began")
            }
            TreeError::Read(at, e) => write!(f, "read failed at byte {at}: {e}"),
            TreeError::TooLarge(bytes) => {
                write!(f, "its hash tree needs {bytes} bytes, more than memory holds")
            }
        }
    }
}

/// The largest data block size that is no larger than `fs_block`, the file system's block (the
/// mapped device's logical block size becomes the data block size, and a file system cannot be
/// mounted on a device whose block is larger than its own), and that divides `size`, so the
/// tree covers the whole image. `None` when none does.
pub fn data_block_for(size: u64, fs_block: u64) -> Option<u64> {
    DATA_BLOCKS.into_iter().find(|&block| block <= fs_block && size.is_multiple_of(block))
}

fn salted(salt: &[u8], data: &[u8]) -> [u8; DIGEST] {
    let mut hash = Sha256::new();
    hash.update(salt);
    hash.update(data);
    hash.finalize().into()
}

/// The number of hash blocks of each level, the lowest (the data blocks' digests) first: each
/// level holds the digests of the one below, 128 to a block, up to a level of one block. An
/// image of one data block has no level; its digest is the root.
pub fn level_blocks(data_blocks: u64) -> Vec<u64> {
    let per_block = (HASH_BLOCK / DIGEST) as u64;
    let mut levels = Vec::new();
    let mut below = data_blocks;
    while below > 1 {
        below = below.div_ceil(per_block);
        levels.push(below);
    }
    levels
}

/// Reads `size` bytes from `image` once and returns the image's SHA-256 and its tree with
/// `data_block`-byte data blocks (one of [`DATA_BLOCKS`], dividing `size`) and `salt`. The
/// tree is built in place: one allocation of its final size, plus the read buffer.
pub fn build(
    image: &mut impl Read,
    size: u64,
    data_block: u64,
    salt: &[u8],
) -> Result<Tree, TreeError> {
    assert!(DATA_BLOCKS.contains(&data_block), "data block {data_block} is not supported");
    assert!(
        size > 0 && size.is_multiple_of(data_block),
        "{size} bytes are not whole {data_block}-byte blocks"
    );
    let data_blocks = size / data_block;
    let levels = level_blocks(data_blocks);
    // Where each level starts on the hash device: the top level first, the lowest last.
    let tree_bytes = levels.iter().sum::<u64>() * HASH_BLOCK as u64;
    let too_large = || TreeError::TooLarge(tree_bytes);
    let total = usize::try_from(tree_bytes).map_err(|_| too_large())?;
    // Each level is smaller than the total, so these sizes fit in usize too.
    let bytes = |blocks: u64| blocks as usize * HASH_BLOCK;
    let mut starts = Vec::with_capacity(levels.len());
    let mut end = total;
    for &blocks in &levels {
        end -= bytes(blocks);
        starts.push(end);
    }
    // The host sets the device's size: a tree too large for guest memory is an error, not an
    // abort.
    let mut hash_device = Vec::new();
    hash_device.try_reserve_exact(total).map_err(|_| too_large())?;
    hash_device.resize(total, 0);
    let mut whole = Sha256::new();
    let mut single = [0u8; DIGEST];
    let mut next = starts.first().copied().unwrap_or(0);
    let mut buffer = vec![0u8; CHUNK];
    let mut offset = 0u64;
    while offset < size {
        let want = usize::try_from((size - offset).min(CHUNK as u64)).unwrap_or(CHUNK);
        let chunk = &mut buffer[..want];
        let mut filled = 0;
        while filled < want {
            match image.read(&mut chunk[filled..]) {
                Ok(0) => return Err(TreeError::Short(offset + filled as u64)),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TreeError::Read(offset + filled as u64, e)),
            }
        }
        let chunk = &*chunk;
        // The image's digest is one serial chain; the blocks' digests are independent of it.
        // Two threads take one each, so the read costs about one hash, not two, where the guest
        // has a second CPU.
        std::thread::scope(|scope| {
            scope.spawn(|| whole.update(chunk));
            for data in chunk.chunks_exact(data_block as usize) {
                let digest = salted(salt, data);
                if levels.is_empty() {
                    single = digest;
                } else {
                    hash_device[next..next + DIGEST].copy_from_slice(&digest);
                    next += DIGEST;
                }
            }
        });
        offset += want as u64;
    }
    // Each level's blocks, hashed, fill the level above (which lies before it).
    for i in 1..levels.len() {
        let (above, below) = hash_device.split_at_mut(starts[i - 1]);
        let below = &below[..bytes(levels[i - 1])];
        let above = &mut above[starts[i]..];
        for (block, slot) in below.chunks_exact(HASH_BLOCK).zip(above.chunks_exact_mut(DIGEST)) {
            slot.copy_from_slice(&salted(salt, block));
        }
    }
    let root = if levels.is_empty() { single } else { salted(salt, &hash_device[..HASH_BLOCK]) };
    Ok(Tree { image_sha256: whole.finalize().into(), root, hash_device, data_block, data_blocks })
}
