//! Tests against the reference image `empty-300G.qcow2` and a list of malformed headers.
//!
//! Expected values for valid images come from qemu-img 10.0.2 only: the vector file itself,
//! its sha256 in `shared/vectors/packing/SOURCES.md`, `qemu-img info --output=json` of it, and
//! its hex dump.
//! The malformed cases state which error each defect is meant to produce; each case is one
//! mutation of a valid image and one `expect!` of the error's `Debug` form.

use expect_test::{Expect, expect};

use crate::format::offset;
use secretvm_testkit::vector;

/// The SHA-256 digest of `data`, as lowercase hex.
fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
use crate::{
    CompressionType, Encryption, Error, FeatureKind, FeatureName, empty_image, read_header,
};

/// `sha256sum empty-300G.qcow2`, as recorded in `shared/vectors/packing/SOURCES.md`.
const VECTOR_SHA256: &str = "2fb59df7bb30c852b5cc080d48a734ede0144d0f4bd1590e370831f4ae0de74e";

const VECTOR: &str = "packing/empty-300G.qcow2";

#[test]
fn empty_300g_equals_the_vector() {
    let ours = empty_image(300 << 30).unwrap();
    // Hermetic: the digest from SOURCES.md, whether or not the vector file is present.
    assert_eq!(sha256_hex(&ours), VECTOR_SHA256);
    let Some(reference) = vector(VECTOR) else { return };
    assert_eq!(sha256_hex(&reference), VECTOR_SHA256, "the vector file changed");
    assert_eq!(ours.len(), reference.len());
    if ours != reference {
        let at = ours.iter().zip(&reference).position(|(a, b)| a != b);
        panic!("first difference at byte {at:#x?}");
    }
}

/// The expected values are those of `qemu-img info --output=json empty-300G.qcow2`
/// (virtual-size 322122547200, cluster-size 65536, compat "1.1", refcount-bits 16,
/// compression-type "zlib", lazy-refcounts, corrupt, extended-l2 and dirty-flag false), and of
/// its hex dump (`xxd`): L1 table of 600 entries at 0x30000, refcount table of one cluster at
/// 0x10000, header_length 0x70, and the feature name table at 0x70.
#[test]
fn read_header_of_the_vector() {
    let Some(bytes) = vector(VECTOR) else { return };
    let info = read_header(&bytes, bytes.len() as u64).unwrap();
    assert_eq!(info.virtual_size, 322_122_547_200);
    assert_eq!(info.cluster_size, 65536);
    assert_eq!(info.cluster_bits, 16);
    assert_eq!((info.version, info.compat), (3, "1.1"));
    assert_eq!(info.refcount_bits, 16);
    assert_eq!(info.compression_type, CompressionType::Zlib);
    assert_eq!(info.encryption, Encryption::None);
    assert!(!info.lazy_refcounts && !info.corrupt && !info.extended_l2 && !info.dirty);
    assert!(!info.external_data_file && !info.data_file_raw);
    assert_eq!((info.l1_size, info.l1_table_offset), (600, 0x30000));
    assert_eq!((info.refcount_table_offset, info.refcount_table_clusters), (0x10000, 1));
    assert_eq!((info.nb_snapshots, info.snapshots_offset), (0, 0));
    assert_eq!(info.header_length, 0x70);
    assert_eq!(
        (info.incompatible_features, info.compatible_features, info.autoclear_features),
        (0, 0, 0)
    );
    assert_eq!(info.backing_file, None);
    assert_eq!(info.backing_format, None);
    assert_eq!(info.data_file, None);
    assert_eq!(info.nb_bitmaps, None);
    assert!(info.unknown_extensions.is_empty());
    assert_eq!(info.file_length, 201_408);
    let table: Vec<_> = info
        .feature_table
        .iter()
        .map(|FeatureName { kind, bit, name }| (*kind, *bit, name.as_str()))
        .collect();
    assert_eq!(
        table,
        [
            (FeatureKind::Incompatible, 0, "dirty bit"),
            (FeatureKind::Incompatible, 1, "corrupt bit"),
            (FeatureKind::Incompatible, 2, "external data file"),
            (FeatureKind::Incompatible, 3, "compression type"),
            (FeatureKind::Incompatible, 4, "extended L2 entries"),
            (FeatureKind::Compatible, 0, "lazy refcounts"),
            (FeatureKind::Autoclear, 0, "bitmaps"),
            (FeatureKind::Autoclear, 1, "raw external data"),
        ]
    );
    // Only the first cluster is needed.
    assert_eq!(read_header(&bytes[..65536], bytes.len() as u64).unwrap(), info);
}

/// Every image we create reads back with the size, rounded up to 512, and the L1 size
/// qemu-img gives it (the L1 sizes are from `xxd -s 0x24 -l 4 -p` of qemu-img's images).
#[test]
fn created_images_read_back() {
    for (size, rounded, l1_size) in [
        (0, 0, 0),
        (1000, 1024, 1),
        (1 << 30, 1 << 30, 2),
        (1 << 40, 1 << 40, 2048),
        ((1 << 51) - 1, 1 << 51, 4_194_304),
    ] {
        let image = empty_image(size).unwrap();
        let info = read_header(&image, image.len() as u64).unwrap();
        assert_eq!((info.virtual_size, info.l1_size), (rounded, l1_size), "{size}");
        assert_eq!(info.l1_table_offset, if l1_size == 0 { 0 } else { 0x30000 });
    }
}

/// The 300 GiB image, as the base of the malformed cases.
fn base() -> Vec<u8> {
    empty_image(300 << 30).unwrap()
}

fn put32(image: &mut [u8], at: usize, value: u32) {
    image[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

fn put64(image: &mut [u8], at: usize, value: u64) {
    image[at..at + 8].copy_from_slice(&value.to_be_bytes());
}

/// Reads `image` (with its own length as the file length) and compares the error's `Debug`
/// form with `expect`.
fn check(image: &[u8], expect: Expect) {
    check_with_len(image, image.len() as u64, expect);
}

fn check_with_len(image: &[u8], file_len: u64, expect: Expect) {
    match read_header(image, file_len) {
        Ok(info) => panic!("accepted: {info:?}"),
        Err(err) => expect.assert_eq(&format!("{err:?}")),
    }
}

/// The offset of the first feature name table entry: after the 112-byte header and the
/// extension's type and length.
const FEATURE_TABLE_DATA: usize = 0x78;

/// Where the end-of-extensions marker sits in our images: after the 8-entry feature table.
const END_MARKER: usize = FEATURE_TABLE_DATA + 8 * 48;

#[test]
fn bad_magic() {
    let mut image = base();
    image[3] = 0xfc;
    check(&image, expect![[r#"BadMagic { actual: [81, 70, 73, 252] }"#]]);
}

#[test]
fn version_1() {
    let mut image = base();
    put32(&mut image, offset::VERSION, 1);
    check(&image, expect![[r#"UnsupportedVersion { actual: 1 }"#]]);
}

#[test]
fn version_4() {
    let mut image = base();
    put32(&mut image, offset::VERSION, 4);
    check(&image, expect![[r#"UnsupportedVersion { actual: 4 }"#]]);
}

#[test]
fn cluster_bits_8() {
    let mut image = base();
    put32(&mut image, offset::CLUSTER_BITS, 8);
    check(&image, expect![[r#"ClusterBits { actual: 8, min: 9, max: 21 }"#]]);
}

#[test]
fn cluster_bits_22() {
    let mut image = base();
    put32(&mut image, offset::CLUSTER_BITS, 22);
    check(&image, expect![[r#"ClusterBits { actual: 22, min: 9, max: 21 }"#]]);
}

#[test]
fn truncated_inputs() {
    let image = base();
    check(&image[..3], expect![[r#"Truncated { what: "magic", needed: 4, available: 3 }"#]]);
    check(&image[..6], expect![[r#"Truncated { what: "version", needed: 8, available: 6 }"#]]);
    check(&image[..20], expect![[r#"Truncated { what: "header", needed: 72, available: 20 }"#]]);
    check(
        &image[..65535],
        expect![[r#"Truncated { what: "header cluster", needed: 65536, available: 65535 }"#]],
    );
    check_with_len(&image, 1000, expect![[r#"LongerThanFile { given: 201408, file_len: 1000 }"#]]);
}

#[test]
fn header_length() {
    let mut image = base();
    put32(&mut image, offset::HEADER_LENGTH, 100);
    check(
        &image,
        expect![[r#"HeaderLength { actual: 100, expected: "at least 104 for version 3" }"#]],
    );
    put32(&mut image, offset::HEADER_LENGTH, 108);
    check(&image, expect![[r#"HeaderLength { actual: 108, expected: "a multiple of 8" }"#]]);
    put32(&mut image, offset::HEADER_LENGTH, 0x10008);
    check(
        &image,
        expect![[r#"HeaderLength { actual: 65544, expected: "at most the cluster size" }"#]],
    );
}

#[test]
fn header_padding_not_zero() {
    let mut image = base();
    image[111] = 1;
    check(
        &image,
        expect![[r#"NonZeroPadding { what: "header padding", offset: 111, actual: 1 }"#]],
    );
}

#[test]
fn l1_too_small_for_the_size() {
    let mut image = base();
    put32(&mut image, offset::L1_SIZE, 599);
    check(
        &image,
        expect![[r#"L1TooSmall { actual: 599, needed: 600, virtual_size: 322122547200 }"#]],
    );
}

#[test]
fn l1_larger_than_qemu_allows() {
    let mut image = base();
    put32(&mut image, offset::L1_SIZE, 4_194_305);
    check(&image, expect![[r#"L1TooLarge { actual: 4194305, max: 4194304 }"#]]);
}

#[test]
fn unaligned_l1_offset() {
    let mut image = base();
    put64(&mut image, offset::L1_TABLE_OFFSET, 0x30200);
    check(
        &image,
        expect![[
            r#"UnalignedTable { table: "l1_table_offset", offset: 197120, cluster_size: 65536 }"#
        ]],
    );
}

#[test]
fn l1_past_end_of_file() {
    let image = base();
    check(
        &image[..image.len() - 1],
        expect![[
            r#"TablePastEnd { table: "l1_table_offset", offset: 196608, length: 4800, file_len: 201407 }"#
        ]],
    );
    let mut image = base();
    put64(&mut image, offset::L1_TABLE_OFFSET, u64::MAX - 0xffff);
    check(
        &image,
        expect![[
            r#"TablePastEnd { table: "l1_table_offset", offset: 18446744073709486080, length: 4800, file_len: 201408 }"#
        ]],
    );
}

#[test]
fn l1_in_the_header_cluster() {
    let mut image = base();
    put64(&mut image, offset::L1_TABLE_OFFSET, 0);
    check(&image, expect![[r#"TableOverlapsHeader { table: "l1_table_offset", offset: 0 }"#]]);
}

#[test]
fn refcount_table() {
    let mut image = base();
    put64(&mut image, offset::REFCOUNT_TABLE_OFFSET, 0x10001);
    check(
        &image,
        expect![[
            r#"UnalignedTable { table: "refcount_table_offset", offset: 65537, cluster_size: 65536 }"#
        ]],
    );
    let mut image = base();
    put32(&mut image, offset::REFCOUNT_TABLE_CLUSTERS, 3);
    check(
        &image,
        expect![[
            r#"TablePastEnd { table: "refcount_table_offset", offset: 65536, length: 196608, file_len: 201408 }"#
        ]],
    );
    put32(&mut image, offset::REFCOUNT_TABLE_CLUSTERS, 129);
    check(&image, expect![[r#"RefcountTableTooLarge { actual: 129, max: 128 }"#]]);
}

#[test]
fn snapshots() {
    let mut image = base();
    put32(&mut image, offset::NB_SNAPSHOTS, 65537);
    check(&image, expect![[r#"TooManySnapshots { actual: 65537, max: 65536 }"#]]);
    put32(&mut image, offset::NB_SNAPSHOTS, 1);
    put64(&mut image, offset::SNAPSHOTS_OFFSET, 0x40000);
    check(
        &image,
        expect![[
            r#"TablePastEnd { table: "snapshots_offset", offset: 262144, length: 40, file_len: 201408 }"#
        ]],
    );
}

#[test]
fn unknown_incompatible_bit() {
    let mut image = base();
    put64(&mut image, offset::INCOMPATIBLE_FEATURES, 1 << 5);
    check(&image, expect![[r#"UnknownIncompatibleFeatures { bits: 32, names: [], known: 31 }"#]]);
    // The feature name table names the bit: rename entry 4 ("extended L2 entries") to bit 63.
    image[FEATURE_TABLE_DATA + 4 * 48 + 1] = 63;
    put64(&mut image, offset::INCOMPATIBLE_FEATURES, 1 << 63);
    check(
        &image,
        expect![[
            r#"UnknownIncompatibleFeatures { bits: 9223372036854775808, names: ["extended L2 entries"], known: 31 }"#
        ]],
    );
}

#[test]
fn refcount_order_7() {
    let mut image = base();
    put32(&mut image, offset::REFCOUNT_ORDER, 7);
    check(&image, expect![[r#"RefcountOrder { actual: 7, max: 6 }"#]]);
}

#[test]
fn crypt_method() {
    let mut image = base();
    put32(&mut image, offset::CRYPT_METHOD, 3);
    check(&image, expect![[r#"CryptMethod { actual: 3 }"#]]);
    put32(&mut image, offset::CRYPT_METHOD, 2);
    check(&image, expect![[r#"CryptoHeader { crypt_method: 2, present: false }"#]]);
}

#[test]
fn compression_type() {
    let mut image = base();
    image[offset::COMPRESSION_TYPE] = 2;
    check(&image, expect![[r#"CompressionType { actual: 2 }"#]]);
    image[offset::COMPRESSION_TYPE] = 1;
    check(&image, expect![[r#"CompressionTypeBit { compression_type: 1, bit_set: false }"#]]);
    image[offset::COMPRESSION_TYPE] = 0;
    put64(&mut image, offset::INCOMPATIBLE_FEATURES, 1 << 3);
    check(&image, expect![[r#"CompressionTypeBit { compression_type: 0, bit_set: true }"#]]);
}

#[test]
fn extended_l2_needs_16k_clusters() {
    let mut image = base();
    put32(&mut image, offset::CLUSTER_BITS, 13);
    put64(&mut image, offset::INCOMPATIBLE_FEATURES, 1 << 4);
    check(&image, expect![[r#"ClusterBits { actual: 13, min: 14, max: 21 }"#]]);
}

#[test]
fn feature_conflicts() {
    let mut image = base();
    put64(&mut image, offset::AUTOCLEAR_FEATURES, 1 << 1);
    check(
        &image,
        expect![[
            r#"FeatureConflict("autoclear bit 1 (raw external data) is set without incompatible bit 2 (external data file)")"#
        ]],
    );
    put64(&mut image, offset::AUTOCLEAR_FEATURES, 1 << 0);
    check(
        &image,
        expect![[
            r#"FeatureConflict("autoclear bit 0 (bitmaps) is set without the bitmaps extension")"#
        ]],
    );
}

#[test]
fn truncated_extension() {
    // The backing file name starts 4 bytes after the end of the feature table, so the
    // end-of-extensions marker does not fit before it.
    let mut image = base();
    put64(&mut image, offset::BACKING_FILE_OFFSET, (END_MARKER + 4) as u64);
    check(&image, expect![[r#"ExtensionTruncated { offset: 504, available: 4, end: 508 }"#]]);
}

#[test]
fn extension_length_past_the_header_cluster() {
    let mut image = base();
    put32(&mut image, 0x74, 0x10000);
    check(
        &image,
        expect![[
            r#"ExtensionTooLarge { ext_type: 1745090647, offset: 112, length: 65536, available: 65416, end: 65536 }"#
        ]],
    );
}

#[test]
fn extension_overlapping_the_backing_file_name() {
    let mut image = base();
    put64(&mut image, offset::BACKING_FILE_OFFSET, 0x100);
    put32(&mut image, offset::BACKING_FILE_SIZE, 4);
    check(
        &image,
        expect![[
            r#"ExtensionTooLarge { ext_type: 1745090647, offset: 112, length: 384, available: 136, end: 256 }"#
        ]],
    );
}

#[test]
fn duplicate_extension() {
    let mut image = base();
    put32(&mut image, END_MARKER, 0x6803_f857);
    check(&image, expect![[r#"DuplicateExtension { ext_type: 1745090647, offset: 504 }"#]]);
}

#[test]
fn feature_table() {
    let mut image = base();
    put32(&mut image, 0x74, 47);
    check(
        &image,
        expect![[
            r#"ExtensionLength { ext_type: 1745090647, offset: 112, actual: 47, expected: "a multiple of 48" }"#
        ]],
    );
    let mut image = base();
    image[FEATURE_TABLE_DATA + 48] = 3;
    check(
        &image,
        expect![[
            r#"ExtensionField { ext_type: 1745090647, offset: 168, field: "feature type", actual: 3, expected: "0, 1 or 2" }"#
        ]],
    );
    let mut image = base();
    image[FEATURE_TABLE_DATA + 1] = 64;
    check(
        &image,
        expect![[
            r#"ExtensionField { ext_type: 1745090647, offset: 121, field: "bit number", actual: 64, expected: "0 to 63" }"#
        ]],
    );
    let mut image = base();
    image[FEATURE_TABLE_DATA + 2] = 0xff;
    check(&image, expect![[r#"NotUtf8 { what: "feature name", offset: 122 }"#]]);
}

/// Writes a backing file name `name` at `at` into `image`.
fn set_backing(image: &mut [u8], at: usize, name: &[u8]) {
    put64(image, offset::BACKING_FILE_OFFSET, at as u64);
    put32(image, offset::BACKING_FILE_SIZE, name.len() as u32);
    image[at..at + name.len()].copy_from_slice(name);
}

#[test]
fn backing_file_name() {
    let mut image = base();
    set_backing(&mut image, 0x200, &[b'a'; 1024]);
    check(&image, expect![[r#"BackingFileNameTooLong { actual: 1024, max: 1023, offset: 512 }"#]]);
    let mut image = base();
    set_backing(&mut image, 0xfff0, &[b'a'; 17]);
    check(&image, expect![[r#"BackingFileNameTooLong { actual: 17, max: 16, offset: 65520 }"#]]);
    let mut image = base();
    put64(&mut image, offset::BACKING_FILE_OFFSET, 0x10001);
    check(&image, expect![[r#"BackingFileOffset { actual: 65537, min: 112, max: 65536 }"#]]);
    put64(&mut image, offset::BACKING_FILE_OFFSET, 0x40);
    check(&image, expect![[r#"BackingFileOffset { actual: 64, min: 112, max: 65536 }"#]]);
    let mut image = base();
    set_backing(&mut image, 0x200, b"base\xff.qcow2");
    check(&image, expect![[r#"NotUtf8 { what: "backing file name", offset: 512 }"#]]);
}

#[test]
fn accepts_a_backing_file_and_unknown_extensions() {
    let mut image = base();
    set_backing(&mut image, 0xffc0, b"base.qcow2");
    // An unknown extension where the end marker was, then a new end marker.
    put32(&mut image, END_MARKER, 0x1234_5678);
    put32(&mut image, END_MARKER + 4, 3);
    image[END_MARKER + 8..END_MARKER + 11].copy_from_slice(b"xyz");
    let info = read_header(&image, image.len() as u64).unwrap();
    assert_eq!(info.backing_file.as_deref(), Some("base.qcow2"));
    assert_eq!(info.unknown_extensions, [0x1234_5678]);
}

#[test]
fn reads_a_version_2_header() {
    // A version 2 header ends at byte 72; our image has zeros from 72 to 96, which read as an
    // end-of-extensions marker.
    let mut image = base();
    put32(&mut image, offset::VERSION, 2);
    let info = read_header(&image, image.len() as u64).unwrap();
    assert_eq!((info.version, info.compat, info.header_length), (2, "0.10", 72));
    assert_eq!((info.refcount_order, info.refcount_bits), (4, 16));
    assert!(info.feature_table.is_empty());
}

/// Flips every byte of the header area through a few values and truncates the image at every
/// length up to the end of the extensions: nothing may panic.
#[test]
fn never_panics_on_mutations() {
    let mut image = base();
    for at in 0..0x208 {
        let original = image[at];
        for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            image[at] = value;
            let _ = read_header(&image, image.len() as u64);
            let _ = read_header(&image[..65536], u64::MAX);
        }
        image[at] = original;
    }
    for len in 0..0x208 {
        let _ = read_header(&image[..len], len as u64);
    }
}

/// The errors of [`Error`] render as one line that names the field and both values.
#[test]
fn error_messages() {
    let mut image = base();
    put32(&mut image, offset::L1_SIZE, 599);
    let err = read_header(&image, image.len() as u64).unwrap_err();
    assert!(matches!(err, Error::L1TooSmall { .. }));
    expect![[r#"l1_size is 599 entries, but virtual size 322122547200 needs at least 600"#]]
        .assert_eq(&err.to_string());
}
