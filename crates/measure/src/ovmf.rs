//! OVMF metadata: the footer GUID table at the end of the firmware volume, the SEV-ES reset
//! block, the SEV hashes table, the SEV metadata (`ASEV`) sections and the TDX metadata (`TDVF`)
//! sections.
//!
//! The layout is defined by edk2's `OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm` (footer table
//! and its entries), `OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm` (`ASEV`) and the Intel TDVF
//! design guide, section 11 ("TDVF metadata", `TDVF`). GUIDs are stored little-endian.

use serde::{Deserialize, Serialize};

use crate::bytes::{add, array, guid, slice, sub, u16_at, u32_at, u64_at};
use crate::digest::Sha384Digest;
use crate::snp::{Gctx, PAGE_SIZE};
use crate::{Error, Result};

/// `96b582de-1fb2-45f7-baea-a366c55a082d`: the footer entry that covers the whole table.
const FOOTER_GUID: [u8; 16] =
    guid(0x96b5_82de, 0x1fb2, 0x45f7, [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d]);
/// `00f771de-1a7e-4fcb-890e-68c77e2fb44e`: the SEV-ES AP reset block (u32 reset EIP).
const SEV_ES_RESET_BLOCK_GUID: [u8; 16] =
    guid(0x00f7_71de, 0x1a7e, 0x4fcb, [0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e]);
/// `7255371f-3a3b-4b04-927b-1da6efa8d454`: the SEV hashes table (u32 GPA, u32 size).
const SEV_HASH_TABLE_GUID: [u8; 16] =
    guid(0x7255_371f, 0x3a3b, 0x4b04, [0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54]);
/// `dc886566-984a-4798-a75e-5585a7bf67cc`: the offset from the end of the file to `ASEV`.
const SEV_METADATA_GUID: [u8; 16] =
    guid(0xdc88_6566, 0x984a, 0x4798, [0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc]);
/// `e47a6535-984a-4798-865e-4685a7bf8ec2`: the offset from the end of the file to `TDVF`.
const TDX_METADATA_GUID: [u8; 16] =
    guid(0xe47a_6535, 0x984a, 0x4798, [0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2]);

/// The size of an entry header: `u16 length` then the GUID.
const ENTRY_HEADER: u64 = 18;
/// The reset vector area at the very end of the image, after the footer table.
const RESET_VECTOR_AREA: u64 = 32;
/// The largest firmware image that fits below 4 GiB.
const FOUR_GIB: u64 = 1 << 32;
/// The size of one `ASEV` item: `u32 gpa, u32 size, u32 type`.
const SEV_ITEM: u64 = 12;
/// The size of one `TDVF` section entry.
const TDVF_SECTION: u64 = 32;

/// The type of an SEV metadata section (`OvmfSevMetadata.asm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SevSectionType {
    /// 1: memory the firmware validates early (SNP: ZERO pages).
    SnpSecMem,
    /// 2: the SNP secrets page.
    SnpSecrets,
    /// 3: the CPUID page.
    Cpuid,
    /// 4: the SVSM calling-area page (ZERO pages).
    SvsmCaa,
    /// 0x10: the page that holds the SEV kernel hashes table.
    SnpKernelHashes,
}

impl SevSectionType {
    /// The type from its numeric value, `None` for unknown types.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::SnpSecMem,
            2 => Self::SnpSecrets,
            3 => Self::Cpuid,
            4 => Self::SvsmCaa,
            0x10 => Self::SnpKernelHashes,
            _ => return None,
        })
    }
}

/// One SEV metadata section, as `extract_ovmf_info.py` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SevSection {
    /// Guest physical address.
    pub gpa: u64,
    /// Size in bytes (may be zero).
    pub size: u64,
    /// The numeric type; see [`SevSectionType`].
    pub section_type: u32,
}

/// The type of a TDVF metadata section (TDVF design guide, table "TDVF_SECTION.Type").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TdvfSectionType {
    /// 0: boot firmware volume (code).
    Bfv,
    /// 1: configuration firmware volume (variables).
    Cfv,
    /// 2: the TD HOB.
    TdHob,
    /// 3: temporary memory.
    TempMem,
    /// 4: permanent memory.
    PermMem,
    /// 5: payload.
    Payload,
    /// 6: payload parameters.
    PayloadParam,
    /// Any other value.
    Other(u32),
}

impl From<u32> for TdvfSectionType {
    fn from(v: u32) -> Self {
        match v {
            0 => Self::Bfv,
            1 => Self::Cfv,
            2 => Self::TdHob,
            3 => Self::TempMem,
            4 => Self::PermMem,
            5 => Self::Payload,
            6 => Self::PayloadParam,
            other => Self::Other(other),
        }
    }
}

/// One TDVF metadata section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdvfSection {
    /// Offset of the section's data in the firmware file.
    pub data_offset: u32,
    /// Bytes of data in the file.
    pub raw_size: u32,
    /// Guest physical address of the section.
    pub gpa: u64,
    /// Size of the section in guest memory.
    pub mem_size: u64,
    /// The section type.
    pub section_type: TdvfSectionType,
    /// Attributes: bit 0 `MR_EXTEND`, bit 1 `PAGE_AUG`.
    pub attributes: u32,
}

impl TdvfSection {
    /// Attribute bit 0: the data is extended into MRTD.
    pub const MR_EXTEND: u32 = 1;
    /// Attribute bit 1: the pages are added after launch (TDH.MEM.PAGE.AUG), unmeasured.
    pub const PAGE_AUG: u32 = 2;
}

/// A parsed OVMF image: the bytes plus the metadata found in them.
#[derive(Debug, Clone)]
pub struct Ovmf<'a> {
    bytes: &'a [u8],
    sev_es_reset_eip: Option<u32>,
    sev_hashes_table: Option<(u32, u32)>,
    sev_sections: Vec<SevSection>,
    tdvf_sections: Vec<TdvfSection>,
}

impl<'a> Ovmf<'a> {
    /// Parses the footer table and the metadata it points to.
    ///
    /// The image must be a non-zero multiple of 4 KiB of at most 4 GiB, since it is mapped to
    /// end at 4 GiB and measured page by page. An image without the footer GUID has an empty
    /// table (as sev-snp-measure treats it).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let len = bytes.len() as u64;
        if len == 0 || !len.is_multiple_of(PAGE_SIZE) || len > FOUR_GIB {
            return Err(Error::FirmwareSize { len });
        }
        let mut ovmf = Ovmf {
            bytes,
            sev_es_reset_eip: None,
            sev_hashes_table: None,
            sev_sections: Vec::new(),
            tdvf_sections: Vec::new(),
        };
        for (offset, entry_guid, data) in footer_entries(bytes)? {
            if entry_guid == SEV_ES_RESET_BLOCK_GUID {
                ovmf.sev_es_reset_eip =
                    Some(u32_at(data, 0, "SEV-ES reset block EIP").map_err(|e| at(e, offset))?);
            } else if entry_guid == SEV_HASH_TABLE_GUID {
                let gpa = u32_at(data, 0, "SEV hash table GPA").map_err(|e| at(e, offset))?;
                let size = u32_at(data, 4, "SEV hash table size").map_err(|e| at(e, offset))?;
                ovmf.sev_hashes_table = Some((gpa, size));
            } else if entry_guid == SEV_METADATA_GUID {
                let from_end = u32_at(data, 0, "SEV metadata offset").map_err(|e| at(e, offset))?;
                ovmf.sev_sections = parse_asev(bytes, from_end)?;
            } else if entry_guid == TDX_METADATA_GUID {
                let n = data.len() as u64;
                let from_end = u32_at(data, n.saturating_sub(4), "TDX metadata offset")
                    .map_err(|e| at(e, offset))?;
                ovmf.tdvf_sections = parse_tdvf(bytes, from_end)?;
            }
        }
        Ok(ovmf)
    }

    /// The image bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The guest physical address of the first byte: the image ends at 4 GiB.
    pub fn gpa_base(&self) -> u64 {
        FOUR_GIB - self.bytes.len() as u64
    }

    /// The AP reset EIP from the SEV-ES reset block, if the entry exists.
    pub fn sev_es_reset_eip(&self) -> Option<u32> {
        self.sev_es_reset_eip
    }

    /// The SEV hashes table `(gpa, size)`, if the entry exists; a GPA of 0 means the build
    /// cannot measure a kernel (OvmfPkgX64).
    pub fn sev_hashes_table(&self) -> Option<(u32, u32)> {
        self.sev_hashes_table
    }

    /// The SEV metadata sections in file order.
    pub fn sev_sections(&self) -> &[SevSection] {
        &self.sev_sections
    }

    /// The TDVF metadata sections in descriptor order.
    pub fn tdvf_sections(&self) -> &[TdvfSection] {
        &self.tdvf_sections
    }

    /// The SNP "OVMF hash": the launch digest after every page of the image has been added as
    /// a NORMAL page at its GPA (`sev-snp-measure --mode snp:ovmf-hash`).
    pub fn snp_ovmf_hash(&self) -> Result<Sha384Digest> {
        let mut gctx = Gctx::default();
        gctx.update_normal_pages(self.gpa_base(), self.bytes)?;
        Ok(gctx.finish())
    }

    /// What `extract_ovmf_info.py` prints: the OVMF hash, the hashes-table GPA (0 if absent),
    /// the SEV-ES reset EIP and the SEV sections in file order.
    ///
    /// Like the script, this fails when the reset EIP is missing or zero.
    pub fn info(&self) -> Result<OvmfInfo> {
        let eip = match self.sev_es_reset_eip {
            Some(eip) if eip != 0 => eip,
            _ => return Err(Error::MissingEntry { what: "SEV-ES reset block" }),
        };
        Ok(OvmfInfo {
            ovmf_hash: self.snp_ovmf_hash()?,
            sev_hashes_table_gpa: self.sev_hashes_table.map_or(0, |(gpa, _)| u64::from(gpa)),
            sev_es_reset_eip: u64::from(eip),
            ovmf_sections: self.sev_sections.clone(),
        })
    }
}

/// Everything the SNP launch digest needs from the firmware, without the firmware: the shape
/// and field names of SecretVM's `extract_ovmf_info.py` output (and of the OVMF part of its
/// `sev_image_fingerprints.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvmfInfo {
    /// [`Ovmf::snp_ovmf_hash`].
    pub ovmf_hash: Sha384Digest,
    /// The SEV hashes table GPA, 0 when the firmware has none.
    pub sev_hashes_table_gpa: u64,
    /// The AP reset EIP.
    pub sev_es_reset_eip: u64,
    /// The SEV metadata sections in file order.
    pub ovmf_sections: Vec<SevSection>,
}

/// Re-anchors a `Truncated` error inside an entry's data to the entry's file offset.
fn at(err: Error, entry_offset: u64) -> Error {
    match err {
        Error::Truncated { what, offset, needed, len } => Error::Truncated {
            what,
            offset: entry_offset.saturating_add(offset),
            needed,
            len: entry_offset.saturating_add(len),
        },
        other => other,
    }
}

/// A footer table entry: the file offset of its data, its GUID, its data.
type FooterEntry<'a> = (u64, [u8; 16], &'a [u8]);

/// The footer table entries `(file offset of the data, GUID, data)`, walked backwards from the
/// end of the table as the reset vector code lays them out.
fn footer_entries(bytes: &[u8]) -> Result<Vec<FooterEntry<'_>>> {
    let len = bytes.len() as u64;
    let footer = sub(len, RESET_VECTOR_AREA + ENTRY_HEADER, "OVMF footer entry offset")?;
    let footer_guid: [u8; 16] = array(bytes, footer + 2, "OVMF footer GUID")?;
    if footer_guid != FOOTER_GUID {
        return Ok(Vec::new());
    }
    let total = u64::from(u16_at(bytes, footer, "OVMF footer table length")?);
    if total < ENTRY_HEADER {
        return Err(Error::BadField {
            what: "OVMF footer table length",
            offset: footer,
            expected: "at least 18 (the footer entry itself)",
            actual: total,
        });
    }
    let start = sub(footer, total - ENTRY_HEADER, "OVMF footer table start").map_err(|_| {
        Error::BadField {
            what: "OVMF footer table length",
            offset: footer,
            expected: "a table that starts inside the image",
            actual: total,
        }
    })?;
    let mut end = footer;
    let mut entries = Vec::new();
    while end - start >= ENTRY_HEADER {
        let header = end - ENTRY_HEADER;
        let entry_len = u64::from(u16_at(bytes, header, "OVMF footer entry length")?);
        if entry_len < ENTRY_HEADER || entry_len > end - start {
            return Err(Error::BadField {
                what: "OVMF footer entry length",
                offset: header,
                expected: "at least 18 and within the footer table",
                actual: entry_len,
            });
        }
        let entry_guid: [u8; 16] = array(bytes, header + 2, "OVMF footer entry GUID")?;
        let data_start = end - entry_len;
        let data = slice(bytes, data_start, entry_len - ENTRY_HEADER, "OVMF footer entry data")?;
        entries.push((data_start, entry_guid, data));
        end = data_start;
    }
    Ok(entries)
}

/// The `ASEV` header's file offset for an offset counted from the end of the image.
fn from_end(bytes: &[u8], from_end: u32, what: &'static str) -> Result<u64> {
    let len = bytes.len() as u64;
    len.checked_sub(u64::from(from_end)).ok_or(Error::BadField {
        what,
        offset: len,
        expected: "an offset from the end that lies inside the image",
        actual: u64::from(from_end),
    })
}

/// The field names a metadata table's header is reported under.
struct TableNames {
    offset: &'static str,
    signature: &'static str,
    version: &'static str,
    count: &'static str,
    items: &'static str,
}

/// Checks a metadata table's header (`magic`, u32 length, u32 version 1, u32 item count) at
/// `offset_from_end` and that its `count` items of `item_len` bytes are present; returns where
/// the items start and how many there are. Nothing is allocated before the bound is checked.
fn table_header(
    bytes: &[u8],
    offset_from_end: u32,
    magic: &[u8; 4],
    item_len: u64,
    names: &TableNames,
) -> Result<(u64, u64)> {
    let base = from_end(bytes, offset_from_end, names.offset)?;
    check_magic(bytes, base, magic, names.signature)?;
    let version = u32_at(bytes, base + 8, names.version)?;
    if version != 1 {
        return Err(Error::BadField {
            what: names.version,
            offset: base + 8,
            expected: "1",
            actual: u64::from(version),
        });
    }
    let count = u64::from(u32_at(bytes, base + 12, names.count)?);
    let start = add(base, 16, names.items)?;
    slice(bytes, start, count.saturating_mul(item_len), names.items)?;
    Ok((start, count))
}

/// Parses `"ASEV", u32 size, u32 version, u32 num_items` and the items, in file order.
fn parse_asev(bytes: &[u8], offset_from_end: u32) -> Result<Vec<SevSection>> {
    let names = TableNames {
        offset: "SEV metadata offset",
        signature: "SEV metadata signature",
        version: "SEV metadata version",
        count: "SEV metadata item count",
        items: "SEV metadata items",
    };
    let (items_start, count) = table_header(bytes, offset_from_end, b"ASEV", SEV_ITEM, &names)?;
    let mut sections = Vec::new();
    for i in 0..count {
        let at = items_start + i * SEV_ITEM;
        sections.push(SevSection {
            gpa: u64::from(u32_at(bytes, at, "SEV metadata item gpa")?),
            size: u64::from(u32_at(bytes, at + 4, "SEV metadata item size")?),
            section_type: u32_at(bytes, at + 8, "SEV metadata item type")?,
        });
    }
    Ok(sections)
}

/// Parses `"TDVF", u32 length, u32 version, u32 count` and the 32-byte section entries.
fn parse_tdvf(bytes: &[u8], offset_from_end: u32) -> Result<Vec<TdvfSection>> {
    let names = TableNames {
        offset: "TDX metadata offset",
        signature: "TDVF descriptor signature",
        version: "TDVF descriptor version",
        count: "TDVF section count",
        items: "TDVF sections",
    };
    let (start, count) = table_header(bytes, offset_from_end, b"TDVF", TDVF_SECTION, &names)?;
    let mut sections = Vec::new();
    let mut total = 0u64;
    for i in 0..count {
        let at = start + i * TDVF_SECTION;
        let gpa = u64_at(bytes, at + 8, "TDVF section MemoryAddress")?;
        let mem_size = u64_at(bytes, at + 16, "TDVF section MemoryDataSize")?;
        if !gpa.is_multiple_of(PAGE_SIZE) || !mem_size.is_multiple_of(PAGE_SIZE) {
            return Err(Error::BadField {
                what: "TDVF section MemoryAddress/MemoryDataSize",
                offset: at + 8,
                expected: "page-aligned address and size",
                actual: gpa | mem_size,
            });
        }
        // Every section lies below 4 GiB: this bounds the work MRTD does.
        total = total.saturating_add(mem_size);
        if total > FOUR_GIB {
            return Err(Error::BadField {
                what: "TDVF section MemoryDataSize",
                offset: at + 16,
                expected: "sections that together fit below 4 GiB",
                actual: mem_size,
            });
        }
        sections.push(TdvfSection {
            data_offset: u32_at(bytes, at, "TDVF section DataOffset")?,
            raw_size: u32_at(bytes, at + 4, "TDVF section RawDataSize")?,
            gpa,
            mem_size,
            section_type: u32_at(bytes, at + 24, "TDVF section Type")?.into(),
            attributes: u32_at(bytes, at + 28, "TDVF section Attributes")?,
        });
    }
    Ok(sections)
}

fn check_magic(bytes: &[u8], offset: u64, magic: &[u8; 4], what: &'static str) -> Result<()> {
    let found: [u8; 4] = array(bytes, offset, what)?;
    if &found != magic {
        return Err(Error::BadMagic {
            what,
            offset,
            expected: String::from_utf8_lossy(magic).into_owned(),
            actual: String::from_utf8_lossy(&found).into_owned(),
        });
    }
    Ok(())
}
