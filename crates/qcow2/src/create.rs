//! The empty image `qemu-img create -f qcow2 FILE SIZE` writes with its default options.
//!
//! qemu-img 10.0.2 writes a version 3 image (compat 1.1) with 64 KiB clusters, 16-bit
//! refcounts, zlib compression, no extended L2 entries and no lazy refcounts, laid out as:
//!
//! | cluster | offset    | contents |
//! |---------|-----------|----------|
//! | 0       | `0x00000` | the 112-byte header, the feature name table extension, the end-of-extensions marker, zeros |
//! | 1       | `0x10000` | the refcount table: one entry, pointing at cluster 2, then zeros |
//! | 2       | `0x20000` | the refcount block: refcount 1 for clusters 0, 1, 2 and each L1 cluster, then zeros |
//! | 3…      | `0x30000` | the L1 table: `l1_size` zero entries; the file ends right after it |
//!
//! `l1_size` is the virtual size (rounded up to 512 bytes) divided by 512 MiB (one L2 table of
//! 8192 entries maps 8192 clusters of 64 KiB), rounded up.
//! A zero-size image has no L1 table at all: `l1_size` 0, `l1_table_offset` 0, and the file
//! is exactly three clusters long.
//! The L1 table of a larger image starts at cluster 3 and may span several clusters (512 for
//! the largest size); the file is not padded to a whole cluster after it.
//! qemu limits the L1 table to 32 MiB, so the largest virtual size is 2 PiB
//! ([`MAX_VIRTUAL_SIZE`]).
//!
//! Every fact in this table was checked byte for byte against qemu-img 10.0.2 (see
//! `DESIGN.md` and `qemu_tests.rs`).

use std::io::Write;

use crate::error::{Error, Result};
use crate::format::{self, HEADER_V3_LEN, Header, MAX_L1_BYTES, TABLE_ENTRY_LEN};

/// The cluster size qemu-img uses by default: 64 KiB.
const CLUSTER_BITS: u32 = 16;

/// The cluster size in bytes.
const CLUSTER_SIZE: u64 = 1 << CLUSTER_BITS;

/// The refcount width qemu-img uses by default: 2^4 = 16 bits.
const REFCOUNT_ORDER: u32 = 4;

/// The bytes of guest data one L1 entry maps: one L2 table of `CLUSTER_SIZE / 8` entries, each
/// mapping one cluster (qcow2.txt, "Cluster mapping").
const BYTES_PER_L1_ENTRY: u64 = CLUSTER_SIZE * (CLUSTER_SIZE / TABLE_ENTRY_LEN);

/// The most L1 entries qemu allows: 32 MiB of 8-byte entries.
const MAX_L1_ENTRIES: u64 = MAX_L1_BYTES / TABLE_ENTRY_LEN;

/// The largest virtual size `qemu-img create -f qcow2` accepts with its default 64 KiB clusters:
/// 2 PiB, which needs the largest L1 table qemu allows (32 MiB).
pub const MAX_VIRTUAL_SIZE: u64 = MAX_L1_ENTRIES * BYTES_PER_L1_ENTRY;

/// qemu rounds the virtual size up to a multiple of this (`BDRV_SECTOR_SIZE`).
const SECTOR_SIZE: u64 = 512;

/// The refcount table, its one refcount block and the L1 table start in these clusters.
const REFCOUNT_TABLE_CLUSTER: u64 = 1;
const REFCOUNT_BLOCK_CLUSTER: u64 = 2;
const L1_TABLE_CLUSTER: u64 = 3;

// One refcount block holds CLUSTER_SIZE * 8 / 16 refcounts; it must cover the three fixed
// clusters and the largest L1 table, as it does in qemu-img's images.
const _: () = assert!(
    L1_TABLE_CLUSTER + MAX_L1_BYTES.div_ceil(CLUSTER_SIZE)
        <= CLUSTER_SIZE * 8 / (1 << REFCOUNT_ORDER)
);
const _: () = assert!(MAX_VIRTUAL_SIZE == 1 << 51);

/// Where everything goes in an empty image of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// The virtual size, rounded up to a multiple of 512.
    virtual_size: u64,
    /// The number of L1 entries.
    l1_entries: u64,
}

impl Layout {
    fn new(virtual_size: u64) -> Result<Layout> {
        let too_large = Error::ImageTooLarge { virtual_size, max: MAX_VIRTUAL_SIZE };
        let rounded = virtual_size.checked_next_multiple_of(SECTOR_SIZE).ok_or(too_large)?;
        let l1_entries = rounded.div_ceil(BYTES_PER_L1_ENTRY);
        if l1_entries > MAX_L1_ENTRIES {
            return Err(Error::ImageTooLarge { virtual_size, max: MAX_VIRTUAL_SIZE });
        }
        Ok(Layout { virtual_size: rounded, l1_entries })
    }

    /// The length of the L1 table in bytes; at most 32 MiB.
    fn l1_bytes(&self) -> u64 {
        self.l1_entries * TABLE_ENTRY_LEN
    }

    /// The clusters the L1 table occupies, the last one possibly in part.
    fn l1_clusters(&self) -> u64 {
        self.l1_bytes().div_ceil(CLUSTER_SIZE)
    }

    /// The length of the image file.
    fn file_len(&self) -> u64 {
        L1_TABLE_CLUSTER * CLUSTER_SIZE + self.l1_bytes()
    }

    fn header(&self) -> Header {
        Header {
            version: 3,
            cluster_bits: CLUSTER_BITS,
            size: self.virtual_size,
            // Bounded by MAX_L1_ENTRIES, which fits in u32.
            l1_size: u32::try_from(self.l1_entries).unwrap_or(u32::MAX),
            l1_table_offset: if self.l1_entries == 0 { 0 } else { L1_TABLE_CLUSTER * CLUSTER_SIZE },
            refcount_table_offset: REFCOUNT_TABLE_CLUSTER * CLUSTER_SIZE,
            refcount_table_clusters: 1,
            refcount_order: REFCOUNT_ORDER,
            header_length: HEADER_V3_LEN as u32,
            ..Header::default()
        }
    }

    /// Cluster 0: the header, the feature name table and the end-of-extensions marker (qcow2.txt,
    /// "Header extensions"), padded with zeros to a cluster.
    fn header_cluster(&self) -> Vec<u8> {
        let mut cluster = Vec::with_capacity(CLUSTER_SIZE as usize);
        cluster.extend_from_slice(&self.header().encode());
        format::push_extension(
            &mut cluster,
            format::ext::FEATURE_TABLE,
            &format::qemu_feature_table(),
        );
        format::push_extension(&mut cluster, format::ext::END, &[]);
        cluster.resize(CLUSTER_SIZE as usize, 0);
        cluster
    }

    /// Cluster 1: a refcount table whose first entry points at the refcount block (qcow2.txt,
    /// "Host cluster management").
    fn refcount_table_cluster(&self) -> Vec<u8> {
        let mut cluster = vec![0u8; CLUSTER_SIZE as usize];
        cluster[..8].copy_from_slice(&(REFCOUNT_BLOCK_CLUSTER * CLUSTER_SIZE).to_be_bytes());
        cluster
    }

    /// Cluster 2: a refcount block with 16-bit refcount 1 for every used cluster.
    fn refcount_block_cluster(&self) -> Vec<u8> {
        let mut cluster = vec![0u8; CLUSTER_SIZE as usize];
        let used = (L1_TABLE_CLUSTER + self.l1_clusters()) as usize;
        for entry in cluster.chunks_exact_mut(2).take(used) {
            entry.copy_from_slice(&1u16.to_be_bytes());
        }
        cluster
    }
}

/// The length of the file [`empty_image`] returns for `virtual_size`.
///
/// # Errors
///
/// [`Error::ImageTooLarge`], as [`empty_image`].
pub fn empty_image_len(virtual_size: u64) -> Result<u64> {
    Ok(Layout::new(virtual_size)?.file_len())
}

/// Returns the bytes `qemu-img create -f qcow2 FILE SIZE` (qemu-img 10.0.2, default options)
/// writes for `virtual_size`.
///
/// Like qemu-img, this first rounds `virtual_size` up to a multiple of 512; the header then
/// holds the rounded size.
/// The image is at most 33,751,040 bytes (for [`MAX_VIRTUAL_SIZE`]): three clusters and the L1
/// table.
/// See the module documentation for the layout.
///
/// # Errors
///
/// [`Error::ImageTooLarge`] if the rounded size is above [`MAX_VIRTUAL_SIZE`], where qemu-img
/// fails with "The image size is too large for file format 'qcow2'", or, for sizes it cannot
/// parse or round, with "Must be between 0 and 9223372036854775807" or "Image size cannot be
/// negative".
pub fn empty_image(virtual_size: u64) -> Result<Vec<u8>> {
    let layout = Layout::new(virtual_size)?;
    // At most 3 clusters plus 32 MiB.
    let mut image = Vec::with_capacity(usize::try_from(layout.file_len()).unwrap_or(0));
    write_layout(&layout, &mut image)?;
    Ok(image)
}

/// Writes the bytes of [`empty_image`] for `virtual_size` into `out`, without holding the L1
/// table in memory.
///
/// # Errors
///
/// [`Error::ImageTooLarge`] as [`empty_image`], checked before anything is written, and
/// [`Error::Write`] if `out` fails.
pub fn write_empty_image(virtual_size: u64, mut out: impl Write) -> Result<()> {
    let layout = Layout::new(virtual_size)?;
    write_layout(&layout, &mut out)
}

fn write_layout(layout: &Layout, out: &mut impl Write) -> Result<()> {
    out.write_all(&layout.header_cluster()).map_err(Error::Write)?;
    out.write_all(&layout.refcount_table_cluster()).map_err(Error::Write)?;
    out.write_all(&layout.refcount_block_cluster()).map_err(Error::Write)?;
    let zeros = [0u8; 8192];
    let mut left = layout.l1_bytes();
    while left > 0 {
        let n = left.min(zeros.len() as u64);
        out.write_all(&zeros[..n as usize]).map_err(Error::Write)?;
        left -= n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// File lengths and L1 sizes observed with `qemu-img create -f qcow2 x.qcow2 SIZE`
    /// (qemu-img 10.0.2): `stat -c %s x.qcow2` and `xxd -s 0x24 -l 4 -p x.qcow2`.
    #[test]
    fn lengths_match_qemu_img() {
        let observed: &[(u64, u64, u32)] = &[
            (0, 196_608, 0),
            (1, 196_616, 1),
            (512, 196_616, 1),
            (1 << 20, 196_616, 1),
            (1 << 30, 196_624, 2),
            (1_610_612_736, 196_632, 3),
            (300 << 30, 201_408, 600),
            (1 << 40, 212_992, 2048),
            (2_251_799_813_684_736, 33_751_040, 4_194_304),
            (2_251_799_813_685_247, 33_751_040, 4_194_304),
            (1 << 51, 33_751_040, 4_194_304),
        ];
        for &(size, file_len, l1_size) in observed {
            let layout = Layout::new(size).unwrap();
            assert_eq!((layout.file_len(), layout.header().l1_size), (file_len, l1_size), "{size}");
            assert_eq!(empty_image_len(size).unwrap(), file_len);
        }
    }

    /// Sizes `qemu-img create -f qcow2 x.qcow2 SIZE` rejected: 2251799813685249 and 3P with
    /// "The image size is too large", 9223372036854775807 with "Image size cannot be negative",
    /// 18446744073709551615 with "Must be between 0 and 9223372036854775807".
    #[test]
    fn rejects_what_qemu_img_rejects() {
        for size in [(1 << 51) + 1, (1 << 51) + 512, 3 << 50, 7 << 60, i64::MAX as u64, u64::MAX] {
            assert!(
                matches!(empty_image(size), Err(Error::ImageTooLarge { virtual_size, max })
                    if virtual_size == size && max == MAX_VIRTUAL_SIZE),
                "{size}"
            );
            assert!(matches!(
                write_empty_image(size, Vec::new()),
                Err(Error::ImageTooLarge { .. })
            ));
        }
    }

    #[test]
    fn writer_and_vec_agree() {
        for size in [0, 1000, 5 << 40] {
            let mut streamed = Vec::new();
            write_empty_image(size, &mut streamed).unwrap();
            assert_eq!(streamed, empty_image(size).unwrap());
        }
    }

    #[test]
    fn write_errors_are_reported() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::StorageFull.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let err = write_empty_image(1 << 30, Full).unwrap_err();
        assert!(matches!(&err, Error::Write(e) if e.kind() == std::io::ErrorKind::StorageFull));
    }
}
