//! Intel TDX measurements: MRTD from the TDVF metadata, RTMR event digests and their fold, the
//! SecretVM and dstack RTMR3 events, and the TD quote fields they are compared with.
//!
//! Specifications: Intel TDX Module ABI (TDH.MEM.PAGE.ADD and TDH.MR.EXTEND update MRTD with
//! 128-byte buffers; TDH.MR.FINALIZE completes it; TDG.MR.RTMR.EXTEND), the TDVF design guide
//! section 11 (metadata), and the TCG PC Client Platform Firmware Profile (event types).

use crate::hasher::Sha384;
use serde::{Deserialize, Serialize};

use crate::bytes::{add, array, guid, slice};
use crate::digest::{Sha256Digest, Sha384Digest, sha384};
use crate::ovmf::{Ovmf, TdvfSection, TdvfSectionType};
use crate::pe::{
    SetupPatch, authenticode_sha384, authenticode_sha384_with_head, qemu_patched_head,
};
use crate::snp::PAGE_SIZE;
use crate::{Error, Result};

/// The order in which QEMU adds and extends the TDVF pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MrtdOrder {
    /// Each page is added and then extended (upstream QEMU 9 and later).
    SinglePass,
    /// All pages of a section are added, then all are extended (QEMU 8.x TDX trees, e.g.
    /// Ubuntu/Canonical 8.2.2).
    TwoPass,
}

/// The running MRTD while the TD is being built; [`Mrtd::finish`] is TDH.MR.FINALIZE.
#[derive(Debug, Clone, Default)]
pub struct Mrtd {
    hash: Sha384,
}

impl Mrtd {
    /// TDH.MEM.PAGE.ADD of the page at `gpa`: `"MEM.PAGE.ADD"`, zero padding to 16 bytes, the
    /// GPA, zeros to 128 bytes.
    pub fn page_add(&mut self, gpa: u64) {
        self.hash.update(buffer(b"MEM.PAGE.ADD", gpa));
    }

    /// TDH.MR.EXTEND of the 256-byte chunk at `gpa`: the 128-byte `"MR.EXTEND"` buffer, then
    /// the chunk.
    pub fn mr_extend(&mut self, gpa: u64, chunk: &[u8; 256]) {
        self.hash.update(buffer(b"MR.EXTEND", gpa));
        self.hash.update(chunk);
    }

    /// The final MRTD.
    pub fn finish(self) -> Sha384Digest {
        Sha384Digest(self.hash.finalize())
    }
}

fn buffer(op: &[u8], gpa: u64) -> [u8; 128] {
    let mut b = [0u8; 128];
    b[..op.len()].copy_from_slice(op);
    b[16..24].copy_from_slice(&gpa.to_le_bytes());
    b
}

/// MRTD of a TDVF image: every section in descriptor order, its pages added unless
/// `PAGE_AUG`, and its data extended in 256-byte chunks when `MR_EXTEND`.
pub fn mrtd(ovmf: &Ovmf<'_>, order: MrtdOrder) -> Result<Sha384Digest> {
    let sections = ovmf.tdvf_sections();
    if sections.is_empty() {
        return Err(Error::MissingEntry { what: "TDX metadata (TDVF)" });
    }
    let mut m = Mrtd::default();
    for s in sections {
        let pages = s.mem_size / PAGE_SIZE;
        let extend = s.attributes & TdvfSection::MR_EXTEND != 0;
        let add_pages = s.attributes & TdvfSection::PAGE_AUG == 0;
        let data = if extend { section_data(ovmf.bytes(), s)? } else { &[] };
        let extend_page = |m: &mut Mrtd, page: u64| -> Result<()> {
            let gpa = add(s.gpa, page * PAGE_SIZE, "TDVF page GPA")?;
            for i in 0..16u64 {
                let at = (page * PAGE_SIZE + i * 256) as usize;
                let mut chunk = [0u8; 256];
                // Bytes past RawDataSize are zero in the TD's memory.
                if let Some(src) = data.get(at..) {
                    let n = src.len().min(256);
                    chunk[..n].copy_from_slice(&src[..n]);
                }
                m.mr_extend(add(gpa, i * 256, "TDVF chunk GPA")?, &chunk);
            }
            Ok(())
        };
        match order {
            MrtdOrder::SinglePass => {
                for page in 0..pages {
                    if add_pages {
                        m.page_add(add(s.gpa, page * PAGE_SIZE, "TDVF page GPA")?);
                    }
                    if extend {
                        extend_page(&mut m, page)?;
                    }
                }
            }
            MrtdOrder::TwoPass => {
                if add_pages {
                    for page in 0..pages {
                        m.page_add(add(s.gpa, page * PAGE_SIZE, "TDVF page GPA")?);
                    }
                }
                if extend {
                    for page in 0..pages {
                        extend_page(&mut m, page)?;
                    }
                }
            }
        }
    }
    Ok(m.finish())
}

/// The raw data of a TDVF section in the firmware file.
pub(crate) fn section_data<'a>(bytes: &'a [u8], s: &TdvfSection) -> Result<&'a [u8]> {
    if u64::from(s.raw_size) > s.mem_size {
        return Err(Error::BadField {
            what: "TDVF section RawDataSize",
            offset: u64::from(s.data_offset),
            expected: "at most MemoryDataSize",
            actual: u64::from(s.raw_size),
        });
    }
    slice(bytes, u64::from(s.data_offset), u64::from(s.raw_size), "TDVF section data")
}

/// A runtime-extendable measurement register's value, folding event digests in order:
/// `rtmr = SHA-384(rtmr || digest)` from 48 zero bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtmr(pub Sha384Digest);

impl Default for Rtmr {
    fn default() -> Self {
        Rtmr(Sha384Digest([0; 48]))
    }
}

impl Rtmr {
    /// TDG.MR.RTMR.EXTEND with one digest.
    pub fn extend(&mut self, digest: &Sha384Digest) {
        let mut h = Sha384::new();
        h.update(self.0.0);
        h.update(digest.0);
        self.0 = Sha384Digest(h.finalize());
    }

    /// The register value.
    pub fn value(&self) -> Sha384Digest {
        self.0
    }
}

/// One measured event: the register it went into, its TCG event type, its digest and what it
/// measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The RTMR index (0-3); CCEL calls it MR index minus one.
    pub rtmr: u8,
    /// The TCG event type (e.g. 0x80000003 EV_EFI_BOOT_SERVICES_APPLICATION).
    pub event_type: u32,
    /// The SHA-384 digest extended into the register.
    pub digest: Sha384Digest,
    /// What was measured.
    pub description: String,
}

/// The four RTMRs after folding `events` in order.
pub fn replay(events: &[Event]) -> Result<[Sha384Digest; 4]> {
    let mut regs = [Rtmr::default(); 4];
    for (i, e) in events.iter().enumerate() {
        let reg = regs.get_mut(usize::from(e.rtmr)).ok_or(Error::BadField {
            what: "event RTMR index",
            offset: i as u64,
            expected: "0 to 3",
            actual: u64::from(e.rtmr),
        })?;
        reg.extend(&e.digest);
    }
    Ok(regs.map(|r| r.value()))
}

/// dstack's runtime event type.
pub const DSTACK_EVENT_TYPE: u32 = 0x0800_0001;

/// A dstack runtime event (cc-eventlog v1) for RTMR3: `SHA-384(le32(0x08000001) || ":" ||
/// name || ":" || payload)`.
pub fn dstack_event(name: &str, payload: &[u8]) -> Event {
    let mut h = Sha384::new();
    h.update(DSTACK_EVENT_TYPE.to_le_bytes());
    h.update(b":");
    h.update(name.as_bytes());
    h.update(b":");
    h.update(payload);
    Event {
        rtmr: 3,
        event_type: DSTACK_EVENT_TYPE,
        digest: Sha384Digest(h.finalize()),
        description: format!("dstack event {name}: {}", hex::encode(payload)),
    }
}

/// A SecretVM native RTMR3 extension (`attest-tool extendrt 3 <sha256>` on tdx,
/// `secretvm-guest extend-rtmr 3 <sha256>` on gcp-tdx): the 32-byte value right-padded with 16
/// zero bytes is the extended digest.
pub fn secretvm_native_event(what: &str, value: &Sha256Digest) -> Event {
    let mut digest = [0u8; 48];
    digest[..32].copy_from_slice(&value.0);
    Event {
        rtmr: 3,
        event_type: 0,
        digest: Sha384Digest(digest),
        description: format!("SecretVM extendrt 3: {what} {value}"),
    }
}

/// The measurement fields of a TDX quote (version 4, TD report body after the 48-byte header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteMeasurements {
    /// MRTD.
    pub mrtd: Sha384Digest,
    /// RTMR0 to RTMR3.
    pub rtmrs: [Sha384Digest; 4],
}

/// Reads MRTD and the RTMRs from a TDX v4 quote.
pub fn quote_measurements(quote: &[u8]) -> Result<QuoteMeasurements> {
    let version = crate::bytes::u16_at(quote, 0, "TDX quote version")?;
    if version != 4 {
        return Err(Error::BadField {
            what: "TDX quote version",
            offset: 0,
            expected: "4",
            actual: u64::from(version),
        });
    }
    let body = 48u64;
    let field = |off: u64, what| array::<48>(quote, body + off, what).map(Sha384Digest);
    Ok(QuoteMeasurements {
        mrtd: field(136, "TD report MRTD")?,
        rtmrs: [
            field(328, "TD report RTMR0")?,
            field(376, "TD report RTMR1")?,
            field(424, "TD report RTMR2")?,
            field(472, "TD report RTMR3")?,
        ],
    })
}

/// SHA-384 of an EFI event's ASCII text (EV_EFI_ACTION and friends).
pub fn action_digest(text: &str) -> Sha384Digest {
    sha384(text.as_bytes())
}

/// TCG event types used below (TCG PC Client Platform Firmware Profile, table "Event Types").
pub mod event_type {
    /// EV_SEPARATOR.
    pub const SEPARATOR: u32 = 0x4;
    /// EV_EVENT_TAG (what the Linux EFI stub uses for the cmdline and initrd).
    pub const EVENT_TAG: u32 = 0x6;
    /// EV_PLATFORM_CONFIG_FLAGS (OVMF's "ACPI DATA" events).
    pub const PLATFORM_CONFIG_FLAGS: u32 = 0xa;
    /// EV_EFI_VARIABLE_DRIVER_CONFIG.
    pub const EFI_VARIABLE_DRIVER_CONFIG: u32 = 0x8000_0001;
    /// EV_EFI_VARIABLE_BOOT.
    pub const EFI_VARIABLE_BOOT: u32 = 0x8000_0002;
    /// EV_EFI_BOOT_SERVICES_APPLICATION.
    pub const EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;
    /// EV_EFI_ACTION.
    pub const EFI_ACTION: u32 = 0x8000_0007;
    /// EV_EFI_PLATFORM_FIRMWARE_BLOB2.
    pub const EFI_PLATFORM_FIRMWARE_BLOB2: u32 = 0x8000_000a;
    /// EV_EFI_HANDOFF_TABLES2.
    pub const EFI_HANDOFF_TABLES2: u32 = 0x8000_000b;
}

fn event(rtmr: u8, event_type: u32, digest: Sha384Digest, description: impl Into<String>) -> Event {
    Event { rtmr, event_type, digest, description: description.into() }
}

/// The three ACPI blobs QEMU serves over fw_cfg, as OVMF measures them, given as digests: the
/// tables depend on the QEMU version and the VM shape and are an explicit input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcpiDigests {
    /// SHA-384 of `etc/table-loader`.
    pub loader: Sha384Digest,
    /// SHA-384 of `etc/acpi/rsdp`.
    pub rsdp: Sha384Digest,
    /// SHA-384 of `etc/acpi/tables`.
    pub tables: Sha384Digest,
}

impl AcpiDigests {
    /// The digests of the three fw_cfg files as QEMU serves them (QEMU already pads them to its
    /// alignment, so these are the bytes a guest reads from
    /// `/sys/firmware/qemu_fw_cfg/by_name/etc/.../raw`): OVMF measures each file's bytes as
    /// downloaded.
    pub fn from_blobs(table_loader: &[u8], rsdp: &[u8], tables: &[u8]) -> Self {
        AcpiDigests { loader: sha384(table_loader), rsdp: sha384(rsdp), tables: sha384(tables) }
    }
}

/// The firmware's RTMR0 event layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rtmr0Layout {
    /// OVMF before edk2-stable202505 without enrolled secure-boot keys (SecretVM's and
    /// dstack's firmware): TD HOB, CFV, five empty secure-boot variables, separator, three
    /// ACPI events, BootOrder and Boot0000 (UiApp).
    Pre202505,
}

/// The TD HOB OVMF measures first into RTMR0, as QEMU builds it for `memory_bytes` of RAM:
/// the PHIT HOB, then one resource HOB per range, with the TD HOB and TempMem sections
/// accepted and the rest unaccepted (the q35 split at 2 GiB when RAM reaches 0xB0000000).
pub fn td_hob(ovmf: &Ovmf<'_>, memory_bytes: u64) -> Result<Vec<u8>> {
    // (accepted, start, end), sorted by start, covering [0, memory_bytes).
    let mut ranges: Vec<(bool, u64, u64)> = vec![(false, 0, memory_bytes)];
    let mut hob_gpa = None;
    for s in ovmf.tdvf_sections() {
        if matches!(s.section_type, TdvfSectionType::TdHob | TdvfSectionType::TempMem) {
            let (start, end) = (s.gpa, add(s.gpa, s.mem_size, "TDVF section end")?);
            if start < end {
                let mut next = Vec::with_capacity(ranges.len() + 2);
                for &(acc, a, b) in &ranges {
                    if acc || b <= start || a >= end {
                        next.push((acc, a, b));
                    } else {
                        if a < start {
                            next.push((false, a, start));
                        }
                        if b > end {
                            next.push((false, end, b));
                        }
                    }
                }
                next.push((true, start, end));
                next.sort_by_key(|r| r.1);
                ranges = next;
            }
        }
        if s.section_type == TdvfSectionType::TdHob {
            hob_gpa = Some(s.gpa);
        }
    }
    let hob_gpa = hob_gpa.ok_or(Error::MissingEntry { what: "TDVF TD_HOB section" })?;
    let mut hob = Vec::with_capacity(56 + 48 * (ranges.len() + 1));
    // PHIT: type 1, length 56, version 9, boot mode and memory fields zero, EfiEndOfHobList
    // patched below.
    hob.extend_from_slice(&1u16.to_le_bytes());
    hob.extend_from_slice(&56u16.to_le_bytes());
    hob.extend_from_slice(&[0; 4]);
    hob.extend_from_slice(&9u32.to_le_bytes());
    hob.extend_from_slice(&[0; 44]);
    let resource = |hob: &mut Vec<u8>, resource_type: u8, start: u64, length: u64| {
        hob.extend_from_slice(&3u16.to_le_bytes());
        hob.extend_from_slice(&48u16.to_le_bytes());
        hob.extend_from_slice(&[0; 4]);
        hob.extend_from_slice(&[0; 16]); // Owner
        hob.extend_from_slice(&[resource_type, 0, 0, 0]);
        hob.extend_from_slice(&7u32.to_le_bytes()); // PRESENT | INITIALIZED | TESTED
        hob.extend_from_slice(&start.to_le_bytes());
        hob.extend_from_slice(&length.to_le_bytes());
    };
    const SYSTEM_MEMORY: u8 = 0;
    const UNACCEPTED: u8 = 7;
    const TWO_GIB: u64 = 0x8000_0000;
    let Some((&(_, last_start, last_end), rest)) = ranges.split_last() else {
        return Err(Error::BadParameter {
            field: "memory_bytes",
            expected: "non-zero",
            actual: "0".into(),
        });
    };
    for &(accepted, start, end) in rest {
        let len = end.checked_sub(start).ok_or(Error::Overflow { what: "TD HOB range" })?;
        resource(&mut hob, if accepted { SYSTEM_MEMORY } else { UNACCEPTED }, start, len);
    }
    let last_len = last_end.checked_sub(last_start).ok_or(Error::BadParameter {
        field: "memory_bytes",
        expected: "above the TDVF TD_HOB and TempMem sections",
        actual: memory_bytes.to_string(),
    })?;
    if memory_bytes >= 0xb000_0000 {
        if last_start < TWO_GIB {
            resource(&mut hob, UNACCEPTED, last_start, TWO_GIB - last_start);
        }
        if last_end > TWO_GIB {
            resource(&mut hob, UNACCEPTED, 1 << 32, last_end - TWO_GIB);
        }
    } else {
        resource(&mut hob, UNACCEPTED, last_start, last_len);
    }
    // EfiEndOfHobList points at the end-of-list HOB (8 bytes) that follows.
    let end = add(add(hob_gpa, hob.len() as u64, "TD HOB end")?, 8, "TD HOB end")?;
    hob[48..56].copy_from_slice(&end.to_le_bytes());
    Ok(hob)
}

/// `8be4df61-93ca-11d2-aa0d-00e098032b8c`: EFI_GLOBAL_VARIABLE.
const EFI_GLOBAL_VARIABLE: [u8; 16] =
    guid(0x8be4_df61, 0x93ca, 0x11d2, [0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c]);
/// `d719b2cb-3d3a-4596-a3bc-dad00e67656f`: EFI_IMAGE_SECURITY_DATABASE_GUID.
const EFI_IMAGE_SECURITY_DATABASE: [u8; 16] =
    guid(0xd719_b2cb, 0x3d3a, 0x4596, [0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f]);
/// `7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1`: OVMF's DXE firmware volume.
const OVMF_DXEFV: [u8; 16] =
    guid(0x7cb8_bdc9, 0xf8eb, 0x4f34, [0xaa, 0xea, 0x3e, 0xe4, 0xaf, 0x65, 0x16, 0xa1]);
/// `462caa21-7614-4503-836e-8ab6f4662331`: MdeModulePkg UiApp.
const UIAPP_FILE: [u8; 16] =
    guid(0x462c_aa21, 0x7614, 0x4503, [0x83, 0x6e, 0x8a, 0xb6, 0xf4, 0x66, 0x23, 0x31]);

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A UEFI_VARIABLE_DATA digest: `VariableName GUID || u64 name length (chars) || u64 data
/// length || UTF-16LE name || data`.
fn variable_digest(vendor: &[u8; 16], name: &str, data: &[u8]) -> Sha384Digest {
    let mut b = Vec::new();
    b.extend_from_slice(vendor);
    b.extend_from_slice(&(name.encode_utf16().count() as u64).to_le_bytes());
    b.extend_from_slice(&(data.len() as u64).to_le_bytes());
    b.extend_from_slice(&utf16le(name));
    b.extend_from_slice(data);
    sha384(&b)
}

/// An EFI_LOAD_OPTION: attributes, device-path length, UTF-16 description with NUL, a
/// firmware-volume file device path.
fn fv_load_option(attributes: u32, description: &str, fv: &[u8; 16], file: &[u8; 16]) -> Vec<u8> {
    let mut path = Vec::new();
    for (subtype, g) in [(7u8, fv), (6u8, file)] {
        path.extend_from_slice(&[4, subtype]); // MEDIA_DEVICE_PATH: PIWG FV / FV file
        path.extend_from_slice(&20u16.to_le_bytes());
        path.extend_from_slice(g);
    }
    path.extend_from_slice(&[0x7f, 0xff, 4, 0]); // End of device path
    let mut b = Vec::new();
    b.extend_from_slice(&attributes.to_le_bytes());
    b.extend_from_slice(&(path.len() as u16).to_le_bytes());
    b.extend_from_slice(&utf16le(description));
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&path);
    b
}

/// The RTMR0 events of `layout` for this firmware, memory size and ACPI tables.
pub fn rtmr0_events(
    ovmf: &Ovmf<'_>,
    layout: Rtmr0Layout,
    memory_bytes: u64,
    acpi: &AcpiDigests,
) -> Result<Vec<Event>> {
    use event_type::*;
    let Rtmr0Layout::Pre202505 = layout;
    let cfv = ovmf
        .tdvf_sections()
        .iter()
        .find(|s| s.section_type == TdvfSectionType::Cfv)
        .ok_or(Error::MissingEntry { what: "TDVF CFV section" })?;
    let mut events = vec![
        event(0, EFI_HANDOFF_TABLES2, sha384(&td_hob(ovmf, memory_bytes)?), "TD HOB"),
        event(
            0,
            EFI_PLATFORM_FIRMWARE_BLOB2,
            sha384(section_data(ovmf.bytes(), cfv)?),
            "CFV (variable store)",
        ),
    ];
    for (vendor, name) in [
        (&EFI_GLOBAL_VARIABLE, "SecureBoot"),
        (&EFI_GLOBAL_VARIABLE, "PK"),
        (&EFI_GLOBAL_VARIABLE, "KEK"),
        (&EFI_IMAGE_SECURITY_DATABASE, "db"),
        (&EFI_IMAGE_SECURITY_DATABASE, "dbx"),
    ] {
        events.push(event(
            0,
            EFI_VARIABLE_DRIVER_CONFIG,
            variable_digest(vendor, name, &[]),
            format!("{name} (empty)"),
        ));
    }
    events.push(event(0, SEPARATOR, sha384(&[0; 4]), "separator"));
    events.push(event(0, PLATFORM_CONFIG_FLAGS, acpi.loader, "ACPI DATA etc/table-loader"));
    events.push(event(0, PLATFORM_CONFIG_FLAGS, acpi.rsdp, "ACPI DATA etc/acpi/rsdp"));
    events.push(event(0, PLATFORM_CONFIG_FLAGS, acpi.tables, "ACPI DATA etc/acpi/tables"));
    events.push(event(0, EFI_VARIABLE_BOOT, sha384(&[0, 0]), "BootOrder = 0000"));
    let boot0000 = fv_load_option(0x109, "UiApp", &OVMF_DXEFV, &UIAPP_FILE);
    events.push(event(0, EFI_VARIABLE_BOOT, sha384(&boot0000), "Boot0000 = UiApp"));
    Ok(events)
}

/// How QEMU serves the kernel over fw_cfg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelLoad {
    /// QEMU 10.1 and older patch the setup header (see [`crate::pe::qemu_patch_setup_header`]).
    Patched {
        /// QEMU's `acpi_data_size` (0x28000 by default).
        acpi_data_size: u32,
    },
    /// QEMU 10.2 and later serve the file unchanged to confidential guests.
    Unpatched,
}

/// The RTMR1 events: the kernel's Authenticode digest as QEMU serves it, then OVMF's fixed
/// boot events.
pub fn rtmr1_events(
    kernel: &[u8],
    initrd_len: Option<u64>,
    append: &str,
    memory_bytes: u64,
    load: KernelLoad,
) -> Result<Vec<Event>> {
    use event_type::*;
    let digest = match load {
        KernelLoad::Unpatched => authenticode_sha384(kernel)?,
        KernelLoad::Patched { acpi_data_size } => {
            let head = qemu_patched_head(
                kernel,
                &SetupPatch { memory_bytes, initrd_len, append, acpi_data_size },
            )?;
            authenticode_sha384_with_head(kernel, &head)?
        }
    };
    Ok(vec![
        event(1, EFI_BOOT_SERVICES_APPLICATION, digest, "kernel (Authenticode SHA-384)"),
        event(
            1,
            EFI_ACTION,
            action_digest("Calling EFI Application from Boot Option"),
            "Calling EFI Application from Boot Option",
        ),
        event(1, SEPARATOR, sha384(&[0; 4]), "separator"),
        event(
            1,
            EFI_ACTION,
            action_digest("Exit Boot Services Invocation"),
            "Exit Boot Services Invocation",
        ),
        event(
            1,
            EFI_ACTION,
            action_digest("Exit Boot Services Returned with Success"),
            "Exit Boot Services Returned with Success",
        ),
    ])
}

/// The command line OVMF hands the kernel: `append`, plus ` initrd=initrd` when an initrd is
/// passed (OVMF's X86QemuLoadImageLib adds it, with the space even for an empty cmdline).
pub fn measured_cmdline(append: &str, has_initrd: bool) -> String {
    if has_initrd { format!("{append} initrd=initrd") } else { append.to_owned() }
}

/// The RTMR2 events the Linux EFI stub measures: the load options (UTF-16LE with a NUL) and the
/// initrd (SHA-384 of its bytes; of nothing when there is none, as dstack-mr models it).
pub fn rtmr2_events(measured_cmdline: &str, initrd: Option<&[u8]>) -> Vec<Event> {
    let mut cmdline = utf16le(measured_cmdline);
    cmdline.extend_from_slice(&[0, 0]);
    vec![
        event(
            2,
            event_type::EVENT_TAG,
            sha384(&cmdline),
            format!("LoadOptions {measured_cmdline:?}"),
        ),
        event(2, event_type::EVENT_TAG, sha384(initrd.unwrap_or_default()), "initrd"),
    ]
}

/// One entry of an event log in dstack's JSON shape (the `event_log` of its `GetQuote`
/// response): CCEL events with their digest, and runtime events whose digest is recomputed
/// from `event` and `event_payload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CcEventLogEntry {
    /// The RTMR index.
    pub imr: u32,
    /// The event type.
    pub event_type: u32,
    /// The SHA-384 digest as hex; empty for runtime events.
    #[serde(default)]
    pub digest: String,
    /// The runtime event's name.
    #[serde(default)]
    pub event: String,
    /// The runtime event's payload as hex.
    #[serde(default)]
    pub event_payload: String,
}

/// Turns log entries into [`Event`]s, recomputing the digest of dstack runtime events (type
/// 0x08000001) from their name and payload and refusing any other event without a digest.
pub fn events_from_log(entries: &[CcEventLogEntry]) -> Result<Vec<Event>> {
    let bad = |i: usize, what, expected, actual: u64| Error::BadField {
        what,
        offset: i as u64,
        expected,
        actual,
    };
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let rtmr = u8::try_from(e.imr).ok().filter(|r| *r < 4).ok_or(bad(
                i,
                "event log entry imr",
                "0 to 3",
                u64::from(e.imr),
            ))?;
            if e.event_type == DSTACK_EVENT_TYPE && e.digest.is_empty() {
                let payload = hex::decode(&e.event_payload).map_err(|_| Error::BadParameter {
                    field: "event_payload",
                    expected: "hex",
                    actual: format!("entry {i}: {}", e.event_payload),
                })?;
                let mut ev = dstack_event(&e.event, &payload);
                ev.rtmr = rtmr;
                return Ok(ev);
            }
            let digest = Sha384Digest::from_hex("event log digest", &e.digest)?;
            let description = if e.event.is_empty() {
                format!("entry {i}, type {:#x}", e.event_type)
            } else {
                format!("entry {i}, type {:#x}: {}", e.event_type, e.event)
            };
            Ok(Event { rtmr, event_type: e.event_type, digest, description })
        })
        .collect()
}

/// A replayed event log next to the values a quote reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayComparison {
    /// The RTMRs the log folds to.
    pub replayed: [Sha384Digest; 4],
    /// The RTMRs the quote reports.
    pub quoted: [Sha384Digest; 4],
    /// Whether each register matches.
    pub matches: [bool; 4],
}

/// Replays `events` and compares each RTMR with the quote's.
pub fn compare_with_quote(events: &[Event], quote: &QuoteMeasurements) -> Result<ReplayComparison> {
    let replayed = replay(events)?;
    let matches = [0, 1, 2, 3].map(|i| replayed[i] == quote.rtmrs[i]);
    Ok(ReplayComparison { replayed, quoted: quote.rtmrs, matches })
}
