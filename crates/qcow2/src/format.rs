//! The on-disk layout of a qcow2 header, as described in QEMU's `docs/interop/qcow2.txt`.
//!
//! All numbers in qcow2 are big-endian (qcow2.txt, "General").
//! [`Header`] holds the fixed fields of "== Header ==" with their byte offsets as constants, and
//! [`Header::encode`] and [`Header::decode`] move them between native integers and bytes through
//! the small `be32`/`be64`/`put_be32`/`put_be64` helpers, so the byte order is stated once.
//! The header-extension types and the feature bits live here too, so that the writer and the
//! reader share one table.

/// The magic at byte 0 of every qcow2 image: `QFI` followed by 0xfb (qcow2.txt, "Header").
pub(crate) const MAGIC: [u8; 4] = *b"QFI\xfb";

/// Byte offsets of the header fields (qcow2.txt, "Header").
pub(crate) mod offset {
    pub(crate) const MAGIC: usize = 0;
    pub(crate) const VERSION: usize = 4;
    pub(crate) const BACKING_FILE_OFFSET: usize = 8;
    pub(crate) const BACKING_FILE_SIZE: usize = 16;
    pub(crate) const CLUSTER_BITS: usize = 20;
    pub(crate) const SIZE: usize = 24;
    pub(crate) const CRYPT_METHOD: usize = 32;
    pub(crate) const L1_SIZE: usize = 36;
    pub(crate) const L1_TABLE_OFFSET: usize = 40;
    pub(crate) const REFCOUNT_TABLE_OFFSET: usize = 48;
    pub(crate) const REFCOUNT_TABLE_CLUSTERS: usize = 56;
    pub(crate) const NB_SNAPSHOTS: usize = 60;
    pub(crate) const SNAPSHOTS_OFFSET: usize = 64;
    pub(crate) const INCOMPATIBLE_FEATURES: usize = 72;
    pub(crate) const COMPATIBLE_FEATURES: usize = 80;
    pub(crate) const AUTOCLEAR_FEATURES: usize = 88;
    pub(crate) const REFCOUNT_ORDER: usize = 96;
    pub(crate) const HEADER_LENGTH: usize = 100;
    pub(crate) const COMPRESSION_TYPE: usize = 104;
}

/// The length of a version 2 header, which ends after `snapshots_offset`.
pub(crate) const HEADER_V2_LEN: usize = 72;

/// The shortest version 3 header: everything up to and including `header_length`.
pub(crate) const HEADER_V3_MIN_LEN: usize = 104;

/// The version 3 header qemu-img writes: the 104 mandatory bytes, the one-byte
/// `compression_type` and 7 bytes of zero padding up to a multiple of 8 (qcow2.txt,
/// "Additional fields" and "Header padding").
pub(crate) const HEADER_V3_LEN: usize = 112;

const _: () = assert!(offset::SNAPSHOTS_OFFSET + 8 == HEADER_V2_LEN);
const _: () = assert!(offset::HEADER_LENGTH + 4 == HEADER_V3_MIN_LEN);
const _: () = assert!(offset::COMPRESSION_TYPE < HEADER_V3_LEN);
const _: () = assert!(HEADER_V3_LEN.is_multiple_of(8));

/// The smallest `cluster_bits` the specification allows (512-byte clusters).
pub(crate) const MIN_CLUSTER_BITS: u32 = 9;

/// The largest `cluster_bits` qemu opens (2 MiB clusters, qcow2.txt "Header", note on byte 20).
pub(crate) const MAX_CLUSTER_BITS: u32 = 21;

/// The smallest `cluster_bits` allowed with Extended L2 Entries (qcow2.txt, "Header").
pub(crate) const MIN_EXTENDED_L2_CLUSTER_BITS: u32 = 14;

/// The largest `refcount_order` (64-bit refcounts, qcow2.txt "Header", bytes 96-99).
pub(crate) const MAX_REFCOUNT_ORDER: u32 = 6;

/// qemu's limit on the size in bytes of the active L1 table (qcow2.txt, "Header", note on size).
pub(crate) const MAX_L1_BYTES: u64 = 32 << 20;

/// qemu's limit on the size in bytes of the refcount table (qcow2.txt, "Host cluster management").
pub(crate) const MAX_REFCOUNT_TABLE_BYTES: u64 = 8 << 20;

/// qemu's limit on the number of internal snapshots (`QCOW_MAX_SNAPSHOTS` in `block/qcow2.h`).
pub(crate) const MAX_SNAPSHOTS: u32 = 65536;

/// The smallest snapshot table entry: the 40 fixed bytes (qcow2.txt, "Snapshots").
pub(crate) const MIN_SNAPSHOT_ENTRY_LEN: u64 = 40;

/// The longest backing file name (qcow2.txt, "Header", bytes 16-19).
pub(crate) const MAX_BACKING_FILE_NAME_LEN: u32 = 1023;

/// The size of one L1, L2 or refcount table entry, in bytes.
pub(crate) const TABLE_ENTRY_LEN: u64 = 8;

/// `crypt_method` values (qcow2.txt, "Header", bytes 32-35).
pub(crate) mod crypt {
    pub(crate) const NONE: u32 = 0;
    pub(crate) const AES: u32 = 1;
    pub(crate) const LUKS: u32 = 2;
}

/// `compression_type` values (qcow2.txt, "Additional fields", byte 104).
pub(crate) mod compression {
    pub(crate) const ZLIB: u8 = 0;
    pub(crate) const ZSTD: u8 = 1;
}

/// Bits of `incompatible_features` (qcow2.txt, "Header", bytes 72-79).
pub(crate) mod incompatible {
    pub(crate) const DIRTY: u64 = 1 << 0;
    pub(crate) const CORRUPT: u64 = 1 << 1;
    pub(crate) const DATA_FILE: u64 = 1 << 2;
    pub(crate) const COMPRESSION_TYPE: u64 = 1 << 3;
    pub(crate) const EXTENDED_L2: u64 = 1 << 4;
    /// Every bit the specification defines; an image with any other bit set must not be opened.
    pub(crate) const KNOWN: u64 = DIRTY | CORRUPT | DATA_FILE | COMPRESSION_TYPE | EXTENDED_L2;
}

/// Bits of `compatible_features` (qcow2.txt, "Header", bytes 80-87).
pub(crate) mod compatible {
    pub(crate) const LAZY_REFCOUNTS: u64 = 1 << 0;
}

/// Bits of `autoclear_features` (qcow2.txt, "Header", bytes 88-95).
pub(crate) mod autoclear {
    pub(crate) const BITMAPS: u64 = 1 << 0;
    pub(crate) const DATA_FILE_RAW: u64 = 1 << 1;
}

/// Header extension types (qcow2.txt, "Header extensions").
pub(crate) mod ext {
    pub(crate) const END: u32 = 0x0000_0000;
    pub(crate) const BACKING_FORMAT: u32 = 0xe279_2aca;
    pub(crate) const FEATURE_TABLE: u32 = 0x6803_f857;
    pub(crate) const BITMAPS: u32 = 0x2385_2875;
    pub(crate) const CRYPTO: u32 = 0x0537_be77;
    pub(crate) const DATA_FILE: u32 = 0x4441_5441;
}

/// The length of one feature name table entry: type, bit number and a 46-byte name
/// (qcow2.txt, "Feature name table").
pub(crate) const FEATURE_ENTRY_LEN: usize = 48;

/// The length of the name field of a feature name table entry.
pub(crate) const FEATURE_NAME_LEN: usize = FEATURE_ENTRY_LEN - 2;

/// The feature name table qemu-img writes into every version 3 image, in its order:
/// `(type, bit, name)` with type 0 = incompatible, 1 = compatible, 2 = autoclear.
///
/// The names and their order were read from an image made by qemu-img 10.0.2
/// (`empty-300G.qcow2`, bytes 0x78..0x1f8).
pub(crate) const QEMU_FEATURE_TABLE: [(u8, u8, &str); 8] = [
    (0, 0, "dirty bit"),
    (0, 1, "corrupt bit"),
    (0, 2, "external data file"),
    (0, 3, "compression type"),
    (0, 4, "extended L2 entries"),
    (1, 0, "lazy refcounts"),
    (2, 0, "bitmaps"),
    (2, 1, "raw external data"),
];

/// The fixed fields of a qcow2 header (qcow2.txt, "Header").
///
/// Version 2 headers end after `snapshots_offset`; for them [`Header::decode`] fills the
/// version 3 fields with the values the specification implies (no features, `refcount_order`
/// 4, `header_length` 72, zlib).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Header {
    pub(crate) version: u32,
    pub(crate) backing_file_offset: u64,
    pub(crate) backing_file_size: u32,
    pub(crate) cluster_bits: u32,
    pub(crate) size: u64,
    pub(crate) crypt_method: u32,
    pub(crate) l1_size: u32,
    pub(crate) l1_table_offset: u64,
    pub(crate) refcount_table_offset: u64,
    pub(crate) refcount_table_clusters: u32,
    pub(crate) nb_snapshots: u32,
    pub(crate) snapshots_offset: u64,
    pub(crate) incompatible_features: u64,
    pub(crate) compatible_features: u64,
    pub(crate) autoclear_features: u64,
    pub(crate) refcount_order: u32,
    pub(crate) header_length: u32,
    /// Present only if `header_length` is larger than 104; zero (zlib) otherwise.
    pub(crate) compression_type: u8,
}

impl Header {
    /// Encodes a version 3 header of [`HEADER_V3_LEN`] bytes, the zero padding included.
    pub(crate) fn encode(&self) -> [u8; HEADER_V3_LEN] {
        let mut buf = [0u8; HEADER_V3_LEN];
        buf[offset::MAGIC..offset::MAGIC + 4].copy_from_slice(&MAGIC);
        put_be32(&mut buf, offset::VERSION, self.version);
        put_be64(&mut buf, offset::BACKING_FILE_OFFSET, self.backing_file_offset);
        put_be32(&mut buf, offset::BACKING_FILE_SIZE, self.backing_file_size);
        put_be32(&mut buf, offset::CLUSTER_BITS, self.cluster_bits);
        put_be64(&mut buf, offset::SIZE, self.size);
        put_be32(&mut buf, offset::CRYPT_METHOD, self.crypt_method);
        put_be32(&mut buf, offset::L1_SIZE, self.l1_size);
        put_be64(&mut buf, offset::L1_TABLE_OFFSET, self.l1_table_offset);
        put_be64(&mut buf, offset::REFCOUNT_TABLE_OFFSET, self.refcount_table_offset);
        put_be32(&mut buf, offset::REFCOUNT_TABLE_CLUSTERS, self.refcount_table_clusters);
        put_be32(&mut buf, offset::NB_SNAPSHOTS, self.nb_snapshots);
        put_be64(&mut buf, offset::SNAPSHOTS_OFFSET, self.snapshots_offset);
        put_be64(&mut buf, offset::INCOMPATIBLE_FEATURES, self.incompatible_features);
        put_be64(&mut buf, offset::COMPATIBLE_FEATURES, self.compatible_features);
        put_be64(&mut buf, offset::AUTOCLEAR_FEATURES, self.autoclear_features);
        put_be32(&mut buf, offset::REFCOUNT_ORDER, self.refcount_order);
        put_be32(&mut buf, offset::HEADER_LENGTH, self.header_length);
        buf[offset::COMPRESSION_TYPE] = self.compression_type;
        buf
    }

    /// Decodes the fixed fields from the start of an image.
    ///
    /// Checks nothing but the length of `bytes` against the version's fixed fields; the caller
    /// validates the values.
    /// Returns `None` if `bytes` is too short for the version it names (or for a version 2
    /// header, if the version is neither 2 nor 3).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Header> {
        let mut header = Header {
            version: be32(bytes, offset::VERSION)?,
            backing_file_offset: be64(bytes, offset::BACKING_FILE_OFFSET)?,
            backing_file_size: be32(bytes, offset::BACKING_FILE_SIZE)?,
            cluster_bits: be32(bytes, offset::CLUSTER_BITS)?,
            size: be64(bytes, offset::SIZE)?,
            crypt_method: be32(bytes, offset::CRYPT_METHOD)?,
            l1_size: be32(bytes, offset::L1_SIZE)?,
            l1_table_offset: be64(bytes, offset::L1_TABLE_OFFSET)?,
            refcount_table_offset: be64(bytes, offset::REFCOUNT_TABLE_OFFSET)?,
            refcount_table_clusters: be32(bytes, offset::REFCOUNT_TABLE_CLUSTERS)?,
            nb_snapshots: be32(bytes, offset::NB_SNAPSHOTS)?,
            snapshots_offset: be64(bytes, offset::SNAPSHOTS_OFFSET)?,
            incompatible_features: 0,
            compatible_features: 0,
            autoclear_features: 0,
            refcount_order: 4,
            header_length: HEADER_V2_LEN as u32,
            compression_type: compression::ZLIB,
        };
        if header.version >= 3 {
            header.incompatible_features = be64(bytes, offset::INCOMPATIBLE_FEATURES)?;
            header.compatible_features = be64(bytes, offset::COMPATIBLE_FEATURES)?;
            header.autoclear_features = be64(bytes, offset::AUTOCLEAR_FEATURES)?;
            header.refcount_order = be32(bytes, offset::REFCOUNT_ORDER)?;
            header.header_length = be32(bytes, offset::HEADER_LENGTH)?;
            if header.header_length as usize > offset::COMPRESSION_TYPE {
                header.compression_type = *bytes.get(offset::COMPRESSION_TYPE)?;
            }
        }
        Some(header)
    }
}

/// Reads the big-endian `u32` at `at`, or `None` if `bytes` is too short.
pub(crate) fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(field.try_into().ok()?))
}

/// Reads the big-endian `u64` at `at`, or `None` if `bytes` is too short.
pub(crate) fn be64(bytes: &[u8], at: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_be_bytes(field.try_into().ok()?))
}

/// Writes `value` big-endian at `at`; the caller guarantees that `buf` is long enough.
fn put_be32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// Writes `value` big-endian at `at`; the caller guarantees that `buf` is long enough.
fn put_be64(buf: &mut [u8], at: usize, value: u64) {
    buf[at..at + 8].copy_from_slice(&value.to_be_bytes());
}

/// Appends a header extension: type, length, data and zero padding to a multiple of 8
/// (qcow2.txt, "Header extensions").
pub(crate) fn push_extension(out: &mut Vec<u8>, ext_type: u32, data: &[u8]) {
    out.extend_from_slice(&ext_type.to_be_bytes());
    // Extensions we write are a few hundred bytes, far below u32::MAX.
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    let padded = data.len().next_multiple_of(8);
    out.resize(out.len() + (padded - data.len()), 0);
}

/// Encodes the feature name table qemu-img writes ([`QEMU_FEATURE_TABLE`]).
pub(crate) fn qemu_feature_table() -> Vec<u8> {
    let mut data = Vec::with_capacity(QEMU_FEATURE_TABLE.len() * FEATURE_ENTRY_LEN);
    for (kind, bit, name) in QEMU_FEATURE_TABLE {
        let mut entry = [0u8; FEATURE_ENTRY_LEN];
        entry[0] = kind;
        entry[1] = bit;
        entry[2..2 + name.len()].copy_from_slice(name.as_bytes());
        data.extend_from_slice(&entry);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_inverts_encode() {
        let header = Header {
            version: 3,
            backing_file_offset: 0x0102_0304_0506_0708,
            backing_file_size: 0x1112_1314,
            cluster_bits: 16,
            size: 0x2122_2324_2526_2728,
            crypt_method: 2,
            l1_size: 0x3132_3334,
            l1_table_offset: 0x4142_4344_4546_4748,
            refcount_table_offset: 0x5152_5354_5556_5758,
            refcount_table_clusters: 0x6162_6364,
            nb_snapshots: 0x7172_7374,
            snapshots_offset: 0x8182_8384_8586_8788,
            incompatible_features: 0x9192_9394_9596_9798,
            compatible_features: 0xa1a2_a3a4_a5a6_a7a8,
            autoclear_features: 0xb1b2_b3b4_b5b6_b7b8,
            refcount_order: 0xc1c2_c3c4,
            header_length: 112,
            compression_type: 0xd1,
        };
        assert_eq!(Header::decode(&header.encode()), Some(header));
    }

    #[test]
    fn decode_needs_the_fields_of_its_version() {
        let v3 = Header { version: 3, header_length: 104, ..Header::default() }.encode();
        assert!(Header::decode(&v3[..HEADER_V3_MIN_LEN - 1]).is_none());
        assert!(Header::decode(&v3[..HEADER_V3_MIN_LEN]).is_some());
        // With a longer header, compression_type is needed too.
        let v3 = Header { version: 3, header_length: 112, ..Header::default() }.encode();
        assert!(Header::decode(&v3[..HEADER_V3_MIN_LEN]).is_none());
        assert!(Header::decode(&v3[..HEADER_V3_MIN_LEN + 1]).is_some());
        let mut v2 = v3;
        v2[offset::VERSION + 3] = 2;
        assert!(Header::decode(&v2[..HEADER_V2_LEN - 1]).is_none());
        assert!(Header::decode(&v2[..HEADER_V2_LEN]).is_some());
    }
}
