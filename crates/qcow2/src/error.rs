//! The error type of the crate: which step failed, on which field or offset, expected versus
//! actual.

use std::io;

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong when parsing a size, creating an image or reading a header.
///
/// Variants that concern a header field name the field as the specification spells it
/// (QEMU `docs/interop/qcow2.txt`), and offsets are byte offsets from the start of the image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The size string is not in qemu-img's size syntax (qemu-img says "Invalid image size
    /// specified: '...'").
    #[error(
        "invalid size {input:?}: expected digits with an optional fraction and one of the suffixes b, k, M, G, T, P, E, or 0x and hex digits"
    )]
    InvalidSize {
        /// The rejected input.
        input: String,
    },

    /// The size string is well-formed but negative or larger than `i64::MAX` (qemu-img says
    /// "Must be between 0 and 9223372036854775807").
    #[error("size {input:?} is out of range: expected 0 to {max} bytes")]
    SizeOutOfRange {
        /// The rejected input.
        input: String,
        /// The largest size qemu-img accepts, `i64::MAX`.
        max: u64,
    },

    /// The virtual size, rounded up to 512 bytes, needs a larger L1 table than qemu allows with
    /// 64 KiB clusters (qemu-img says "The image size is too large for file format 'qcow2'").
    #[error(
        "virtual size {virtual_size} is too large for 64 KiB clusters: expected at most {max} bytes"
    )]
    ImageTooLarge {
        /// The requested virtual size, before rounding.
        virtual_size: u64,
        /// The largest virtual size, [`crate::MAX_VIRTUAL_SIZE`].
        max: u64,
    },

    /// Writing the image to the caller's writer failed.
    #[error("writing the image failed")]
    Write(#[source] io::Error),

    /// The bytes handed to [`crate::read_header`] end before a structure that must be in them.
    #[error(
        "{what} needs {needed} bytes from the start of the image, but only {available} were given"
    )]
    Truncated {
        /// The structure that does not fit.
        what: &'static str,
        /// How many bytes from the start of the image it needs.
        needed: u64,
        /// How many bytes were given.
        available: u64,
    },

    /// More bytes were given than the file is long.
    #[error("{given} bytes were given, but the file is only {file_len} bytes long")]
    LongerThanFile {
        /// The length of the given bytes.
        given: u64,
        /// The file length the caller passed.
        file_len: u64,
    },

    /// The magic at offset 0 is not `QFI\xfb`.
    #[error("magic at offset 0 is {actual:02x?}, expected \"QFI\\xfb\"")]
    BadMagic {
        /// The four bytes found.
        actual: [u8; 4],
    },

    /// The `version` field is neither 2 nor 3.
    #[error("version is {actual}, expected 2 or 3")]
    UnsupportedVersion {
        /// The version found.
        actual: u32,
    },

    /// The `cluster_bits` field is out of range.
    #[error("cluster_bits is {actual}, expected {min} to {max}")]
    ClusterBits {
        /// The value found.
        actual: u32,
        /// The smallest accepted value.
        min: u32,
        /// The largest accepted value.
        max: u32,
    },

    /// The `header_length` field is invalid.
    #[error("header_length is {actual}, expected {expected}")]
    HeaderLength {
        /// The value found.
        actual: u32,
        /// What was expected.
        expected: &'static str,
    },

    /// Padding or reserved bytes that must be zero are not.
    #[error("byte at offset {offset} ({what}) is {actual:#04x}, expected 0")]
    NonZeroPadding {
        /// What the byte belongs to.
        what: &'static str,
        /// Its offset.
        offset: u64,
        /// Its value.
        actual: u8,
    },

    /// The image sets incompatible feature bits this crate does not know; such an image must not
    /// be opened (qcow2.txt, "Header", bytes 72-79).
    #[error(
        "unknown incompatible features {bits:#x} (names from the feature table: {names:?}), expected none outside {known:#x}"
    )]
    UnknownIncompatibleFeatures {
        /// The unknown bits.
        bits: u64,
        /// The names the image's feature name table gives them, if any.
        names: Vec<String>,
        /// The bits this crate knows.
        known: u64,
    },

    /// Two feature bits or fields contradict each other.
    #[error("inconsistent features: {0}")]
    FeatureConflict(&'static str),

    /// The `crypt_method` field is not 0 (none), 1 (AES) or 2 (LUKS).
    #[error("crypt_method is {actual}, expected 0, 1 or 2")]
    CryptMethod {
        /// The value found.
        actual: u32,
    },

    /// The `compression_type` field is not 0 (zlib) or 1 (zstd).
    #[error("compression_type is {actual}, expected 0 (zlib) or 1 (zstd)")]
    CompressionType {
        /// The value found.
        actual: u8,
    },

    /// The compression type incompatible bit (bit 3) disagrees with `compression_type`: it must
    /// be set exactly when the type is not zlib.
    #[error("incompatible feature bit 3 is {}, but compression_type is {compression_type}", if *bit_set { "set" } else { "clear" })]
    CompressionTypeBit {
        /// The `compression_type` field.
        compression_type: u8,
        /// Whether bit 3 is set.
        bit_set: bool,
    },

    /// The `refcount_order` field is larger than 6.
    #[error("refcount_order is {actual}, expected at most {max}")]
    RefcountOrder {
        /// The value found.
        actual: u32,
        /// The largest accepted value.
        max: u32,
    },

    /// The `l1_size` field exceeds qemu's 32 MiB L1 table limit.
    #[error("l1_size is {actual} entries, expected at most {max}")]
    L1TooLarge {
        /// The value found.
        actual: u32,
        /// The largest accepted value.
        max: u64,
    },

    /// The L1 table has fewer entries than the virtual size needs.
    #[error("l1_size is {actual} entries, but virtual size {virtual_size} needs at least {needed}")]
    L1TooSmall {
        /// The value found.
        actual: u32,
        /// The entries the virtual size needs.
        needed: u64,
        /// The `size` field.
        virtual_size: u64,
    },

    /// The `refcount_table_clusters` field exceeds qemu's 8 MiB refcount table limit.
    #[error("refcount_table_clusters is {actual}, expected at most {max}")]
    RefcountTableTooLarge {
        /// The value found.
        actual: u32,
        /// The largest accepted value for this cluster size.
        max: u64,
    },

    /// The `nb_snapshots` field exceeds qemu's limit.
    #[error("nb_snapshots is {actual}, expected at most {max}")]
    TooManySnapshots {
        /// The value found.
        actual: u32,
        /// The largest accepted value.
        max: u32,
    },

    /// A table offset is not a multiple of the cluster size.
    #[error("{table} offset {offset:#x} is not aligned to the cluster size {cluster_size}")]
    UnalignedTable {
        /// The table, named after its header field.
        table: &'static str,
        /// Its offset.
        offset: u64,
        /// The cluster size.
        cluster_size: u64,
    },

    /// A non-empty table starts in the header cluster.
    #[error("{table} at offset {offset:#x} overlaps the header cluster")]
    TableOverlapsHeader {
        /// The table, named after its header field.
        table: &'static str,
        /// Its offset.
        offset: u64,
    },

    /// A table does not end within the file.
    #[error(
        "{table} at offset {offset:#x} with length {length} ends past the end of the file ({file_len} bytes)"
    )]
    TablePastEnd {
        /// The table, named after its header field.
        table: &'static str,
        /// Its offset.
        offset: u64,
        /// Its length in bytes.
        length: u64,
        /// The file length.
        file_len: u64,
    },

    /// The `backing_file_offset` field points outside the space after the header in the first
    /// cluster.
    #[error("backing_file_offset is {actual:#x}, expected 0 or {min:#x} to {max:#x}")]
    BackingFileOffset {
        /// The value found.
        actual: u64,
        /// The end of the header.
        min: u64,
        /// The cluster size.
        max: u64,
    },

    /// The backing file name is longer than 1023 bytes or runs past the first cluster.
    #[error(
        "backing_file_size is {actual}, expected at most {max} for backing_file_offset {offset:#x}"
    )]
    BackingFileNameTooLong {
        /// The `backing_file_size` field.
        actual: u32,
        /// The longest name that fits.
        max: u64,
        /// The `backing_file_offset` field.
        offset: u64,
    },

    /// A string (backing file name, format or data file name, feature name) is not UTF-8.
    #[error("{what} at offset {offset:#x} is not UTF-8")]
    NotUtf8 {
        /// Which string.
        what: &'static str,
        /// Its offset.
        offset: u64,
    },

    /// Fewer than the 8 bytes of an extension's type and length remain before the end of the
    /// header extension area.
    #[error(
        "header extension at offset {offset:#x} is truncated: {available} bytes left before the end of the extension area at {end:#x}, expected at least 8"
    )]
    ExtensionTruncated {
        /// The offset of the extension.
        offset: u64,
        /// The bytes left.
        available: u64,
        /// The end of the extension area: the backing file name, or the end of the first cluster.
        end: u64,
    },

    /// A header extension's data runs past the end of the header extension area.
    #[error(
        "header extension {ext_type:#010x} at offset {offset:#x} has length {length}, but only {available} bytes are left before the end of the extension area at {end:#x}"
    )]
    ExtensionTooLarge {
        /// The extension type.
        ext_type: u32,
        /// The offset of the extension.
        offset: u64,
        /// Its `length` field.
        length: u32,
        /// The bytes left for its data.
        available: u64,
        /// The end of the extension area.
        end: u64,
    },

    /// A header extension type appears twice.
    #[error(
        "header extension {ext_type:#010x} appears again at offset {offset:#x}, expected at most once"
    )]
    DuplicateExtension {
        /// The extension type.
        ext_type: u32,
        /// The offset of the second occurrence.
        offset: u64,
    },

    /// A known header extension has the wrong length.
    #[error(
        "header extension {ext_type:#010x} at offset {offset:#x} has length {actual}, expected {expected}"
    )]
    ExtensionLength {
        /// The extension type.
        ext_type: u32,
        /// The offset of the extension.
        offset: u64,
        /// Its `length` field.
        actual: u32,
        /// What was expected.
        expected: &'static str,
    },

    /// A field inside a known header extension is invalid.
    #[error(
        "header extension {ext_type:#010x} at offset {offset:#x}: {field} is {actual:#x}, expected {expected}"
    )]
    ExtensionField {
        /// The extension type.
        ext_type: u32,
        /// The offset of the field.
        offset: u64,
        /// The field, named as in the specification.
        field: &'static str,
        /// The value found.
        actual: u64,
        /// What was expected.
        expected: &'static str,
    },

    /// The full disk encryption header pointer extension is present although `crypt_method` is
    /// not LUKS, or missing although it is.
    #[error("crypt_method is {crypt_method}, but the full disk encryption header extension is {}", if *present { "present" } else { "missing" })]
    CryptoHeader {
        /// The `crypt_method` field.
        crypt_method: u32,
        /// Whether the extension is present.
        present: bool,
    },
}
