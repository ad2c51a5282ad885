//! A validating reader for the header cluster of a qcow2 image, version 2 or 3.
//!
//! [`read_header`] checks every field of "== Header ==" and every header extension
//! (QEMU `docs/interop/qcow2.txt`) against the specification and against the limits qemu
//! enforces when it opens an image, and returns what `qemu-img info` shows as an [`Info`].
//! It reads only the first cluster: it does not follow the L1, L2 or refcount tables, so it
//! does not check refcounts (that is `qemu-img check`'s job).
//!
//! Input is hostile: all arithmetic on input values is checked, every slice is taken with
//! `get`, the extension walk advances by at least 8 bytes per step within one cluster (at most
//! 2 MiB), and nothing is allocated beyond the size of the given bytes.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::{
    self, HEADER_V2_LEN, HEADER_V3_LEN, HEADER_V3_MIN_LEN, Header, MAGIC,
    MAX_BACKING_FILE_NAME_LEN, MAX_CLUSTER_BITS, MAX_L1_BYTES, MAX_REFCOUNT_ORDER,
    MAX_REFCOUNT_TABLE_BYTES, MAX_SNAPSHOTS, MIN_CLUSTER_BITS, MIN_EXTENDED_L2_CLUSTER_BITS,
    MIN_SNAPSHOT_ENTRY_LEN, TABLE_ENTRY_LEN, autoclear, compatible, compression, crypt, ext,
    incompatible, offset,
};

/// What `qemu-img info` shows about a qcow2 image, plus the raw header values behind it.
///
/// Field names follow qcow2.txt; the comments name the matching `qemu-img info --output=json`
/// key where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Info {
    /// The `size` field: the virtual disk size in bytes (`virtual-size`).
    pub virtual_size: u64,
    /// The `cluster_bits` field.
    pub cluster_bits: u32,
    /// `1 << cluster_bits` (`cluster-size`).
    pub cluster_size: u64,
    /// The `version` field: 2 or 3.
    pub version: u32,
    /// The version as qemu-img names it: `"0.10"` for version 2, `"1.1"` for version 3
    /// (`format-specific.data.compat`).
    pub compat: &'static str,
    /// The `refcount_order` field (4 for version 2).
    pub refcount_order: u32,
    /// `1 << refcount_order` (`format-specific.data.refcount-bits`).
    pub refcount_bits: u32,
    /// The `compression_type` field (`format-specific.data.compression-type`).
    pub compression_type: CompressionType,
    /// The `crypt_method` field (`encrypted` and `format-specific.data.encrypt`).
    pub encryption: Encryption,
    /// The `l1_size` field: the number of entries of the active L1 table.
    pub l1_size: u32,
    /// The `l1_table_offset` field.
    pub l1_table_offset: u64,
    /// The `refcount_table_offset` field.
    pub refcount_table_offset: u64,
    /// The `refcount_table_clusters` field.
    pub refcount_table_clusters: u32,
    /// The `nb_snapshots` field.
    pub nb_snapshots: u32,
    /// The `snapshots_offset` field.
    pub snapshots_offset: u64,
    /// The `header_length` field (72 for version 2).
    pub header_length: u32,
    /// The `incompatible_features` bitmap; every set bit is one this crate knows.
    pub incompatible_features: u64,
    /// The `compatible_features` bitmap, unknown bits included.
    pub compatible_features: u64,
    /// The `autoclear_features` bitmap, unknown bits included.
    pub autoclear_features: u64,
    /// Incompatible bit 0: refcounts may be inconsistent (`dirty-flag`).
    pub dirty: bool,
    /// Incompatible bit 1: the image is marked corrupt (`format-specific.data.corrupt`).
    pub corrupt: bool,
    /// Incompatible bit 2: guest data lives in an external data file.
    pub external_data_file: bool,
    /// Incompatible bit 4: L2 entries have subcluster bitmaps
    /// (`format-specific.data.extended-l2`).
    pub extended_l2: bool,
    /// Compatible bit 0 (`format-specific.data.lazy-refcounts`).
    pub lazy_refcounts: bool,
    /// Autoclear bit 1: the external data file is a consistent raw image
    /// (`format-specific.data.data-file-raw`).
    pub data_file_raw: bool,
    /// The number of persistent bitmaps, if autoclear bit 0 is set and the bitmaps extension
    /// is present.
    pub nb_bitmaps: Option<u32>,
    /// The entries of the feature name table extension, in file order.
    pub feature_table: Vec<FeatureName>,
    /// The backing file name (`backing-filename`), if there is one.
    pub backing_file: Option<String>,
    /// The backing file format extension (`backing-filename-format`), if present.
    pub backing_format: Option<String>,
    /// The external data file name extension (`format-specific.data.data-file`), if present.
    pub data_file: Option<String>,
    /// The types of header extensions this crate does not know, in file order.
    pub unknown_extensions: Vec<u32>,
    /// The length of the image file, as the caller passed it.
    pub file_length: u64,
}

/// How compressed clusters are compressed (qcow2.txt, "Additional fields", byte 104).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressionType {
    /// Type 0, the default; also what version 2 and short version 3 headers imply.
    Zlib,
    /// Type 1.
    Zstd,
}

/// How guest data is encrypted (qcow2.txt, "Header", bytes 32-35).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// Method 0: not encrypted.
    None,
    /// Method 1: the legacy AES-CBC scheme.
    Aes,
    /// Method 2: LUKS, with the full disk encryption header extension.
    Luks,
}

/// Which feature bitmap a feature name table entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    /// Type 0: `incompatible_features`.
    Incompatible,
    /// Type 1: `compatible_features`.
    Compatible,
    /// Type 2: `autoclear_features`.
    Autoclear,
}

/// One entry of the feature name table (qcow2.txt, "Feature name table").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeatureName {
    /// The bitmap the bit belongs to.
    pub kind: FeatureKind,
    /// The bit number, 0 to 63.
    pub bit: u8,
    /// The name, without its zero padding.
    pub name: String,
}

/// Parses and validates the header of a qcow2 image.
///
/// `bytes` is the start of the image file and must hold at least its whole first cluster (the
/// cluster size is read from the header, at most 2 MiB), which is where the header, the header
/// extensions and the backing file name live (qcow2.txt, "Header extensions"); passing the
/// whole file is fine.
/// `file_len` is the length of the whole file, against which table offsets are checked.
///
/// # Errors
///
/// One [`Error`] variant per violated rule, naming the field or offset and the expected and
/// actual values; see the variants from [`Error::Truncated`] on.
pub fn read_header(bytes: &[u8], file_len: u64) -> Result<Info> {
    let given = bytes.len() as u64;
    if given > file_len {
        return Err(Error::LongerThanFile { given, file_len });
    }
    let magic =
        bytes.get(..4).ok_or(Error::Truncated { what: "magic", needed: 4, available: given })?;
    if magic != MAGIC {
        let mut actual = [0u8; 4];
        actual.copy_from_slice(magic);
        return Err(Error::BadMagic { actual });
    }
    let version = format::be32(bytes, offset::VERSION).ok_or(Error::Truncated {
        what: "version",
        needed: 8,
        available: given,
    })?;
    if !(2..=3).contains(&version) {
        return Err(Error::UnsupportedVersion { actual: version });
    }
    let cluster_bits = format::be32(bytes, offset::CLUSTER_BITS).ok_or(Error::Truncated {
        what: "header",
        needed: HEADER_V2_LEN as u64,
        available: given,
    })?;
    if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
        return Err(Error::ClusterBits {
            actual: cluster_bits,
            min: MIN_CLUSTER_BITS,
            max: MAX_CLUSTER_BITS,
        });
    }
    let cluster_size = 1u64 << cluster_bits;
    let cluster = bytes.get(..cluster_size as usize).ok_or(Error::Truncated {
        what: "header cluster",
        needed: cluster_size,
        available: given,
    })?;
    // The first cluster is at least 512 bytes, enough for every fixed field.
    let header = Header::decode(cluster).ok_or(Error::Truncated {
        what: "header",
        needed: HEADER_V3_LEN as u64,
        available: given,
    })?;
    Validator { cluster, header, cluster_size, file_len }.run()
}

/// The state shared by the checks of one header.
struct Validator<'a> {
    /// The first cluster of the image.
    cluster: &'a [u8],
    header: Header,
    cluster_size: u64,
    file_len: u64,
}

/// What the header extension walk found.
#[derive(Default)]
struct Extensions {
    feature_table: Vec<FeatureName>,
    backing_format: Option<String>,
    data_file: Option<String>,
    nb_bitmaps: Option<u32>,
    has_crypto_header: bool,
    unknown: Vec<u32>,
}

impl Validator<'_> {
    fn run(&self) -> Result<Info> {
        let h = &self.header;
        self.check_header_length()?;
        let backing_file = self.backing_file()?;
        let extensions_end =
            if h.backing_file_offset == 0 { self.cluster_size } else { h.backing_file_offset };
        let extensions = self.walk_extensions(extensions_end);

        let unknown_bits = h.incompatible_features & !incompatible::KNOWN;
        if unknown_bits != 0 {
            let names = extensions
                .as_ref()
                .map(|found| {
                    found
                        .feature_table
                        .iter()
                        .filter(|f| {
                            f.kind == FeatureKind::Incompatible && (unknown_bits >> f.bit) & 1 == 1
                        })
                        .map(|f| f.name.clone())
                        .collect()
                })
                .unwrap_or_default();
            return Err(Error::UnknownIncompatibleFeatures {
                bits: unknown_bits,
                names,
                known: incompatible::KNOWN,
            });
        }
        let extensions = extensions?;

        if h.refcount_order > MAX_REFCOUNT_ORDER {
            return Err(Error::RefcountOrder { actual: h.refcount_order, max: MAX_REFCOUNT_ORDER });
        }
        let encryption = match h.crypt_method {
            crypt::NONE => Encryption::None,
            crypt::AES => Encryption::Aes,
            crypt::LUKS => Encryption::Luks,
            actual => return Err(Error::CryptMethod { actual }),
        };
        if extensions.has_crypto_header != (h.crypt_method == crypt::LUKS) {
            return Err(Error::CryptoHeader {
                crypt_method: h.crypt_method,
                present: extensions.has_crypto_header,
            });
        }
        let compression_type = match h.compression_type {
            compression::ZLIB => CompressionType::Zlib,
            compression::ZSTD => CompressionType::Zstd,
            actual => return Err(Error::CompressionType { actual }),
        };
        let bit_set = h.incompatible_features & incompatible::COMPRESSION_TYPE != 0;
        if bit_set != (h.compression_type != compression::ZLIB) {
            return Err(Error::CompressionTypeBit {
                compression_type: h.compression_type,
                bit_set,
            });
        }
        let extended_l2 = h.incompatible_features & incompatible::EXTENDED_L2 != 0;
        if extended_l2 && h.cluster_bits < MIN_EXTENDED_L2_CLUSTER_BITS {
            return Err(Error::ClusterBits {
                actual: h.cluster_bits,
                min: MIN_EXTENDED_L2_CLUSTER_BITS,
                max: MAX_CLUSTER_BITS,
            });
        }
        let external_data_file = h.incompatible_features & incompatible::DATA_FILE != 0;
        let data_file_raw = h.autoclear_features & autoclear::DATA_FILE_RAW != 0;
        if data_file_raw && !external_data_file {
            return Err(Error::FeatureConflict(
                "autoclear bit 1 (raw external data) is set without incompatible bit 2 (external data file)",
            ));
        }
        if data_file_raw && backing_file.is_some() {
            return Err(Error::FeatureConflict(
                "autoclear bit 1 (raw external data) is set in an image with a backing file",
            ));
        }
        let bitmaps_bit = h.autoclear_features & autoclear::BITMAPS != 0;
        if bitmaps_bit && extensions.nb_bitmaps.is_none() {
            return Err(Error::FeatureConflict(
                "autoclear bit 0 (bitmaps) is set without the bitmaps extension",
            ));
        }

        self.check_tables(extended_l2)?;

        Ok(Info {
            virtual_size: h.size,
            cluster_bits: h.cluster_bits,
            cluster_size: self.cluster_size,
            version: h.version,
            compat: if h.version == 2 { "0.10" } else { "1.1" },
            refcount_order: h.refcount_order,
            refcount_bits: 1 << h.refcount_order,
            compression_type,
            encryption,
            l1_size: h.l1_size,
            l1_table_offset: h.l1_table_offset,
            refcount_table_offset: h.refcount_table_offset,
            refcount_table_clusters: h.refcount_table_clusters,
            nb_snapshots: h.nb_snapshots,
            snapshots_offset: h.snapshots_offset,
            header_length: h.header_length,
            incompatible_features: h.incompatible_features,
            compatible_features: h.compatible_features,
            autoclear_features: h.autoclear_features,
            dirty: h.incompatible_features & incompatible::DIRTY != 0,
            corrupt: h.incompatible_features & incompatible::CORRUPT != 0,
            external_data_file,
            extended_l2,
            lazy_refcounts: h.compatible_features & compatible::LAZY_REFCOUNTS != 0,
            data_file_raw,
            nb_bitmaps: if bitmaps_bit { extensions.nb_bitmaps } else { None },
            feature_table: extensions.feature_table,
            backing_file,
            backing_format: extensions.backing_format,
            data_file: extensions.data_file,
            unknown_extensions: extensions.unknown,
            file_length: self.file_len,
        })
    }

    /// `header_length` rules (qcow2.txt, "Header", bytes 100-103, and "Header padding").
    fn check_header_length(&self) -> Result<()> {
        let h = &self.header;
        if h.version == 2 {
            return Ok(());
        }
        let actual = h.header_length;
        if (actual as usize) < HEADER_V3_MIN_LEN {
            return Err(Error::HeaderLength { actual, expected: "at least 104 for version 3" });
        }
        if !actual.is_multiple_of(8) {
            return Err(Error::HeaderLength { actual, expected: "a multiple of 8" });
        }
        if u64::from(actual) > self.cluster_size {
            return Err(Error::HeaderLength { actual, expected: "at most the cluster size" });
        }
        // The padding after compression_type, up to the next multiple of 8, must be zero.
        let padding_end = (actual as usize).min(HEADER_V3_LEN);
        for at in offset::COMPRESSION_TYPE + 1..padding_end {
            let byte = self.cluster.get(at).copied().unwrap_or(0);
            if byte != 0 {
                return Err(Error::NonZeroPadding {
                    what: "header padding",
                    offset: at as u64,
                    actual: byte,
                });
            }
        }
        Ok(())
    }

    /// The backing file name: at `backing_file_offset`, after the header, inside the first
    /// cluster, at most 1023 bytes (qcow2.txt, "Header", bytes 8-19).
    fn backing_file(&self) -> Result<Option<String>> {
        let h = &self.header;
        if h.backing_file_offset == 0 {
            return Ok(None);
        }
        let header_end = u64::from(h.header_length);
        if h.backing_file_offset < header_end || h.backing_file_offset > self.cluster_size {
            return Err(Error::BackingFileOffset {
                actual: h.backing_file_offset,
                min: header_end,
                max: self.cluster_size,
            });
        }
        let max =
            u64::from(MAX_BACKING_FILE_NAME_LEN).min(self.cluster_size - h.backing_file_offset);
        if u64::from(h.backing_file_size) > max {
            return Err(Error::BackingFileNameTooLong {
                actual: h.backing_file_size,
                max,
                offset: h.backing_file_offset,
            });
        }
        if h.backing_file_size == 0 {
            return Ok(None);
        }
        // Both ends are within the cluster, checked above.
        let start = h.backing_file_offset as usize;
        let name =
            self.cluster.get(start..start + h.backing_file_size as usize).unwrap_or_default();
        utf8(name, "backing file name", h.backing_file_offset).map(Some)
    }

    /// Walks the header extensions from the end of the header to `end` (qcow2.txt,
    /// "Header extensions").
    fn walk_extensions(&self, end: u64) -> Result<Extensions> {
        let mut found = Extensions::default();
        let mut seen = BTreeSet::new();
        let mut at = u64::from(self.header.header_length);
        // `end` is at most the cluster size, so every offset below fits in usize, and each step
        // advances by at least 8 bytes.
        while at < end {
            let available = end - at;
            if available < 8 {
                return Err(Error::ExtensionTruncated { offset: at, available, end });
            }
            let ext_type = self.be32(at);
            let length = self.be32(at + 4);
            let data_start = at + 8;
            let room = end - data_start;
            if u64::from(length) > room {
                return Err(Error::ExtensionTooLarge {
                    ext_type,
                    offset: at,
                    length,
                    available: room,
                    end,
                });
            }
            if ext_type == ext::END {
                break;
            }
            if !seen.insert(ext_type) {
                return Err(Error::DuplicateExtension { ext_type, offset: at });
            }
            let data = self
                .cluster
                .get(data_start as usize..(data_start + u64::from(length)) as usize)
                .unwrap_or_default();
            self.extension(&mut found, ext_type, at, data)?;
            at = data_start + u64::from(length).next_multiple_of(8);
        }
        Ok(found)
    }

    /// Decodes one known extension into `found`, or records an unknown one.
    fn extension(&self, found: &mut Extensions, ext_type: u32, at: u64, data: &[u8]) -> Result<()> {
        let length = data.len() as u32;
        let data_offset = at + 8;
        match ext_type {
            ext::BACKING_FORMAT => {
                // qemu keeps the format name in a 16-byte buffer with a terminating zero.
                if length > 15 {
                    return Err(Error::ExtensionLength {
                        ext_type,
                        offset: at,
                        actual: length,
                        expected: "at most 15",
                    });
                }
                found.backing_format = Some(utf8(data, "backing file format", data_offset)?);
            }
            ext::DATA_FILE => {
                found.data_file = Some(utf8(data, "external data file name", data_offset)?);
            }
            ext::FEATURE_TABLE => {
                if !data.len().is_multiple_of(format::FEATURE_ENTRY_LEN) {
                    return Err(Error::ExtensionLength {
                        ext_type,
                        offset: at,
                        actual: length,
                        expected: "a multiple of 48",
                    });
                }
                for (i, entry) in data.chunks_exact(format::FEATURE_ENTRY_LEN).enumerate() {
                    let entry_offset = data_offset + (i * format::FEATURE_ENTRY_LEN) as u64;
                    found.feature_table.push(feature_name(ext_type, entry_offset, entry)?);
                }
            }
            ext::BITMAPS => {
                if length != 24 {
                    return Err(Error::ExtensionLength {
                        ext_type,
                        offset: at,
                        actual: length,
                        expected: "24",
                    });
                }
                if self.header.autoclear_features & autoclear::BITMAPS != 0 {
                    found.nb_bitmaps = Some(self.bitmaps(ext_type, data_offset)?);
                }
            }
            ext::CRYPTO => {
                if length != 16 {
                    return Err(Error::ExtensionLength {
                        ext_type,
                        offset: at,
                        actual: length,
                        expected: "16",
                    });
                }
                let crypto_offset = self.be64(data_offset);
                if !crypto_offset.is_multiple_of(self.cluster_size) {
                    return Err(Error::ExtensionField {
                        ext_type,
                        offset: data_offset,
                        field: "offset",
                        actual: crypto_offset,
                        expected: "a multiple of the cluster size",
                    });
                }
                found.has_crypto_header = true;
            }
            _ => found.unknown.push(ext_type),
        }
        Ok(())
    }

    /// Checks the fields of the bitmaps extension (qcow2.txt, "Bitmaps extension") whose data
    /// starts at `at`, and returns `nb_bitmaps`.
    fn bitmaps(&self, ext_type: u32, at: u64) -> Result<u32> {
        let nb_bitmaps = self.be32(at);
        if !(1..=65535).contains(&nb_bitmaps) {
            return Err(Error::ExtensionField {
                ext_type,
                offset: at,
                field: "nb_bitmaps",
                actual: u64::from(nb_bitmaps),
                expected: "1 to 65535",
            });
        }
        let reserved = self.be32(at + 4);
        if reserved != 0 {
            return Err(Error::ExtensionField {
                ext_type,
                offset: at + 4,
                field: "reserved",
                actual: u64::from(reserved),
                expected: "0",
            });
        }
        let directory_size = self.be64(at + 8);
        let directory_offset = self.be64(at + 16);
        self.check_table("bitmap_directory_offset", directory_offset, directory_size)?;
        Ok(nb_bitmaps)
    }

    /// Checks the refcount table, the snapshot table and the L1 table.
    fn check_tables(&self, extended_l2: bool) -> Result<()> {
        let h = &self.header;
        let max_refcount_clusters = MAX_REFCOUNT_TABLE_BYTES >> h.cluster_bits;
        if u64::from(h.refcount_table_clusters) > max_refcount_clusters {
            return Err(Error::RefcountTableTooLarge {
                actual: h.refcount_table_clusters,
                max: max_refcount_clusters,
            });
        }
        // At most 8 MiB, checked above.
        let refcount_table_len = u64::from(h.refcount_table_clusters) * self.cluster_size;
        self.check_table("refcount_table_offset", h.refcount_table_offset, refcount_table_len)?;

        if h.nb_snapshots > MAX_SNAPSHOTS {
            return Err(Error::TooManySnapshots { actual: h.nb_snapshots, max: MAX_SNAPSHOTS });
        }
        // A lower bound: each entry has at least its 40 fixed bytes.
        let snapshots_len = u64::from(h.nb_snapshots) * MIN_SNAPSHOT_ENTRY_LEN;
        self.check_table("snapshots_offset", h.snapshots_offset, snapshots_len)?;

        let max_l1 = MAX_L1_BYTES / TABLE_ENTRY_LEN;
        if u64::from(h.l1_size) > max_l1 {
            return Err(Error::L1TooLarge { actual: h.l1_size, max: max_l1 });
        }
        // Each L1 entry maps one L2 table of cluster_size / entry size entries, each mapping one
        // cluster (qcow2.txt, "Cluster mapping" and "Extended L2 Entries").
        let l2_entry_bits = if extended_l2 { 4 } else { 3 };
        let bytes_per_l1_entry_bits = 2 * h.cluster_bits - l2_entry_bits;
        let needed = h.size.div_ceil(1u64 << bytes_per_l1_entry_bits);
        if u64::from(h.l1_size) < needed {
            return Err(Error::L1TooSmall { actual: h.l1_size, needed, virtual_size: h.size });
        }
        let l1_len = u64::from(h.l1_size) * TABLE_ENTRY_LEN;
        self.check_table("l1_table_offset", h.l1_table_offset, l1_len)
    }

    /// Checks that a table of `length` bytes at `offset` is cluster-aligned and, if not empty,
    /// lies after the header cluster and within the file.
    fn check_table(&self, table: &'static str, offset: u64, length: u64) -> Result<()> {
        if !offset.is_multiple_of(self.cluster_size) {
            return Err(Error::UnalignedTable { table, offset, cluster_size: self.cluster_size });
        }
        if length == 0 {
            return Ok(());
        }
        if offset < self.cluster_size {
            return Err(Error::TableOverlapsHeader { table, offset });
        }
        match offset.checked_add(length) {
            Some(end) if end <= self.file_len => Ok(()),
            _ => Err(Error::TablePastEnd { table, offset, length, file_len: self.file_len }),
        }
    }

    /// The big-endian `u32` at `at` in the first cluster; callers only pass offsets they
    /// checked to be inside it.
    fn be32(&self, at: u64) -> u32 {
        usize::try_from(at).ok().and_then(|at| format::be32(self.cluster, at)).unwrap_or(0)
    }

    /// The big-endian `u64` at `at` in the first cluster, as [`Validator::be32`].
    fn be64(&self, at: u64) -> u64 {
        usize::try_from(at).ok().and_then(|at| format::be64(self.cluster, at)).unwrap_or(0)
    }
}

/// Decodes one 48-byte feature name table entry at `offset`.
fn feature_name(ext_type: u32, offset: u64, entry: &[u8]) -> Result<FeatureName> {
    let kind_byte = entry.first().copied().unwrap_or(0);
    let kind = match kind_byte {
        0 => FeatureKind::Incompatible,
        1 => FeatureKind::Compatible,
        2 => FeatureKind::Autoclear,
        _ => {
            return Err(Error::ExtensionField {
                ext_type,
                offset,
                field: "feature type",
                actual: u64::from(kind_byte),
                expected: "0, 1 or 2",
            });
        }
    };
    let bit = entry.get(1).copied().unwrap_or(0);
    if bit > 63 {
        return Err(Error::ExtensionField {
            ext_type,
            offset: offset + 1,
            field: "bit number",
            actual: u64::from(bit),
            expected: "0 to 63",
        });
    }
    let name_field = entry.get(2..2 + format::FEATURE_NAME_LEN).unwrap_or_default();
    let name_len = name_field.iter().position(|&b| b == 0).unwrap_or(name_field.len());
    let name = utf8(&name_field[..name_len], "feature name", offset + 2)?;
    Ok(FeatureName { kind, bit, name })
}

/// `bytes` as a `String`, or [`Error::NotUtf8`] naming `what` at `offset`.
fn utf8(bytes: &[u8], what: &'static str, offset: u64) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::NotUtf8 { what, offset })
}
