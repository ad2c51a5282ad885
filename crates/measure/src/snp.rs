//! The AMD SEV-SNP launch digest as QEMU launches a guest: the GCTX page-update chain, the SEV
//! kernel hashes table, the VMSA of each vCPU and the vCPU signatures; also the SEV and SEV-ES
//! launch digests (SHA-256 of what LAUNCH_UPDATE_DATA and LAUNCH_UPDATE_VMSA encrypt).
//!
//! Specifications: AMD "SEV Secure Nested Paging Firmware ABI Specification" (SNP_LAUNCH_UPDATE,
//! the PAGE_INFO structure and the page types), AMD64 APM volume 2, table B-4 (the VMSA save
//! area), and QEMU `target/i386/sev.c` (the kernel hashes table and the order of the updates).

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::hasher::Sha384;

use crate::bytes::{add, guid, mul};
use crate::digest::{Sha256Digest, Sha384Digest, sha256, sha384};
use crate::ovmf::{Ovmf, OvmfInfo, SevSection, SevSectionType};
use crate::{Error, Result};

/// The page size every update covers.
pub const PAGE_SIZE: u64 = 4096;

/// The GPA SNP uses for VMSA pages in PAGE_INFO.
const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;
/// The reset vector of the boot processor.
const BSP_EIP: u32 = 0xFFFF_FFF0;
/// The most vCPUs accepted: bounds the work a launch description can ask for.
pub const MAX_VCPUS: u32 = 4096;

/// The SNP page types of SNP_LAUNCH_UPDATE (SNP firmware ABI, "PAGE_TYPE").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PageType {
    /// 0x01: a page of data, measured by its SHA-384.
    Normal = 1,
    /// 0x02: a VMSA page, measured by its SHA-384 at GPA `0xFFFFFFFFF000`.
    Vmsa = 2,
    /// 0x03: a zero page; contents field zero.
    Zero = 3,
    /// 0x04: an unmeasured page; contents field zero.
    Unmeasured = 4,
    /// 0x05: the secrets page; contents field zero.
    Secrets = 5,
    /// 0x06: the CPUID page; contents field zero.
    Cpuid = 6,
}

/// The guest context's launch digest while pages are being added; [`Gctx::finish`] turns it
/// into the final measurement.
#[derive(Debug, Clone)]
pub struct Gctx {
    ld: [u8; 48],
}

impl Default for Gctx {
    /// A fresh context: the launch digest starts as 48 zero bytes.
    fn default() -> Self {
        Gctx { ld: [0; 48] }
    }
}

impl Gctx {
    /// A context seeded with a digest computed earlier, e.g. the OVMF hash
    /// (`--snp-ovmf-hash`).
    pub fn seeded(ld: Sha384Digest) -> Self {
        Gctx { ld: ld.0 }
    }

    /// One SNP_LAUNCH_UPDATE of one page: `ld = SHA-384(PAGE_INFO)` where PAGE_INFO is
    /// `ld || contents || u16 0x70 || u8 page_type || u8 imi_page=0 || u8 vmpl3..vmpl1 perms=0
    /// || u8 reserved=0 || u64 gpa` (0x70 bytes).
    pub fn update(&mut self, page_type: PageType, gpa: u64, contents: &[u8; 48]) {
        let mut info = [0u8; 0x70];
        info[..48].copy_from_slice(&self.ld);
        info[48..96].copy_from_slice(contents);
        info[96..98].copy_from_slice(&0x70u16.to_le_bytes());
        info[98] = page_type as u8;
        info[104..112].copy_from_slice(&gpa.to_le_bytes());
        self.ld = Sha384::digest(info);
    }

    /// Adds `data` as NORMAL pages from `gpa`; `data` must be a multiple of 4 KiB.
    pub fn update_normal_pages(&mut self, gpa: u64, data: &[u8]) -> Result<()> {
        if !(data.len() as u64).is_multiple_of(PAGE_SIZE) {
            return Err(Error::BadField {
                what: "NORMAL page data length",
                offset: gpa,
                expected: "a multiple of 4096",
                actual: data.len() as u64,
            });
        }
        // Every page's GPA fits in 64 bits if the last one does.
        let pages = data.len() as u64 / PAGE_SIZE;
        if pages > 0 {
            add(gpa, mul(pages - 1, PAGE_SIZE, "page GPA")?, "page GPA")?;
        }
        // The page digests are independent (and hashed several at a time where the CPU
        // allows); only their folding into the launch digest is sequential.
        let mut at = gpa;
        crate::hasher::page_digests(data, &mut |digest| {
            self.update(PageType::Normal, at, &digest);
            at = at.wrapping_add(PAGE_SIZE);
        });
        Ok(())
    }

    /// Adds `size` bytes (rounded up to whole pages) from `gpa` as pages of `page_type` with a
    /// zero contents field.
    pub fn update_empty_pages(&mut self, page_type: PageType, gpa: u64, size: u64) -> Result<()> {
        let pages = size.div_ceil(PAGE_SIZE);
        for i in 0..pages {
            self.update(page_type, add(gpa, i * PAGE_SIZE, "page GPA")?, &[0; 48]);
        }
        Ok(())
    }

    /// Adds one VMSA page.
    pub fn update_vmsa(&mut self, vmsa: &[u8; 4096]) {
        self.update(PageType::Vmsa, VMSA_GPA, &sha384(vmsa).0);
    }

    /// The launch digest so far.
    pub fn current(&self) -> Sha384Digest {
        Sha384Digest(self.ld)
    }

    /// The final launch digest: what the attestation report's MEASUREMENT field holds.
    pub fn finish(self) -> Sha384Digest {
        Sha384Digest(self.ld)
    }
}

/// The guest vCPU model, which sets the signature QEMU puts in RDX of every VMSA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vcpu {
    /// A QEMU CPU model name: `EPYC`, `EPYC-v1`..`EPYC-v4`, `EPYC-IBPB`, `EPYC-Rome`,
    /// `EPYC-Milan`, `EPYC-Genoa`, `EPYC-Turin` and their `-vN` aliases.
    Type(String),
    /// The signature (CPUID leaf 1 EAX) itself.
    Signature(u32),
    /// Family, model and stepping, as `-cpu host` reports them.
    FamilyModelStepping {
        /// The CPU family (e.g. 25 for Milan).
        family: u32,
        /// The model.
        model: u32,
        /// The stepping.
        stepping: u32,
    },
}

impl Vcpu {
    /// The CPUID leaf 1 EAX signature.
    pub fn signature(&self) -> Result<u32> {
        match self {
            Vcpu::Signature(sig) => Ok(*sig),
            Vcpu::FamilyModelStepping { family, model, stepping } => {
                cpu_sig(*family, *model, *stepping)
            }
            Vcpu::Type(name) => {
                let (family, model, stepping) = vcpu_type(name).ok_or_else(|| {
                    Error::BadParameter {
                        field: "vcpu_type",
                        expected: "EPYC, EPYC-v1..v4, EPYC-IBPB, EPYC-Rome(-v1..v4), EPYC-Milan(-v1..v3), EPYC-Genoa(-v1..v2), EPYC-Turin(-v1)",
                        actual: name.clone(),
                    }
                })?;
                cpu_sig(family, model, stepping)
            }
        }
    }
}

/// Family, model and stepping of QEMU's AMD EPYC CPU models (QEMU `target/i386/cpu.c`).
fn vcpu_type(name: &str) -> Option<(u32, u32, u32)> {
    let version = |base: &str, max: u32| -> bool {
        name == base
            || name.strip_prefix(base).and_then(|s| s.strip_prefix("-v")).is_some_and(|v| {
                v.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n)) && !v.starts_with('0')
            })
    };
    if version("EPYC", 4) || name == "EPYC-IBPB" {
        Some((23, 1, 2))
    } else if version("EPYC-Rome", 4) {
        Some((23, 49, 0))
    } else if version("EPYC-Milan", 3) {
        Some((25, 1, 1))
    } else if version("EPYC-Genoa", 2) {
        Some((25, 17, 0))
    } else if version("EPYC-Turin", 1) {
        Some((26, 0, 0))
    } else {
        None
    }
}

/// The CPUID leaf 1 EAX layout: extended family above 0xf, extended model in bits 16-19.
fn cpu_sig(family: u32, model: u32, stepping: u32) -> Result<u32> {
    let bad = |field, expected, actual: u32| Error::BadParameter {
        field,
        expected,
        actual: actual.to_string(),
    };
    if family > 0xff + 0xf {
        return Err(bad("vcpu_family", "at most 270", family));
    }
    if model > 0xff {
        return Err(bad("vcpu_model", "at most 255", model));
    }
    if stepping > 0xf {
        return Err(bad("vcpu_stepping", "at most 15", stepping));
    }
    let (family_low, family_high) = if family > 0xf { (0xf, family - 0xf) } else { (family, 0) };
    Ok((family_high << 20)
        | ((model >> 4) << 16)
        | (family_low << 8)
        | ((model & 0xf) << 4)
        | stepping)
}

/// The initial VMSA QEMU/KVM gives a vCPU that starts at `eip` (APM vol. 2 table B-4 offsets).
pub fn vmsa_page(eip: u32, guest_features: u64, vcpu_sig: u32) -> [u8; 4096] {
    let mut p = [0u8; 4096];
    let mut put =
        |offset: usize, bytes: &[u8]| p[offset..offset + bytes.len()].copy_from_slice(bytes);
    // A segment register: u16 selector, u16 attrib, u32 limit, u64 base.
    let seg = |selector: u16, attrib: u16, limit: u32, base: u64| {
        let mut s = [0u8; 16];
        s[0..2].copy_from_slice(&selector.to_le_bytes());
        s[2..4].copy_from_slice(&attrib.to_le_bytes());
        s[4..8].copy_from_slice(&limit.to_le_bytes());
        s[8..16].copy_from_slice(&base.to_le_bytes());
        s
    };
    let data = seg(0, 0x93, 0xffff, 0);
    put(0x000, &data); // es
    put(0x010, &seg(0xf000, 0x9b, 0xffff, u64::from(eip & 0xffff_0000))); // cs
    put(0x020, &data); // ss
    put(0x030, &data); // ds
    put(0x040, &data); // fs
    put(0x050, &data); // gs
    put(0x060, &seg(0, 0, 0xffff, 0)); // gdtr
    put(0x070, &seg(0, 0x82, 0xffff, 0)); // ldtr
    put(0x080, &seg(0, 0, 0xffff, 0)); // idtr
    put(0x090, &seg(0, 0x8b, 0xffff, 0)); // tr
    put(0x0d0, &0x1000u64.to_le_bytes()); // efer: SVME, set by KVM
    put(0x148, &0x40u64.to_le_bytes()); // cr4: MCE, set by KVM
    put(0x158, &0x10u64.to_le_bytes()); // cr0: ET
    put(0x160, &0x400u64.to_le_bytes()); // dr7
    put(0x168, &0xffff_0ff0u64.to_le_bytes()); // dr6
    put(0x170, &2u64.to_le_bytes()); // rflags
    put(0x178, &u64::from(eip & 0xffff).to_le_bytes()); // rip
    put(0x268, &0x0007_0406_0007_0406u64.to_le_bytes()); // g_pat: APM vol. 2 A.3
    put(0x310, &u64::from(vcpu_sig).to_le_bytes()); // rdx: the CPU signature (QEMU)
    put(0x3b0, &guest_features.to_le_bytes()); // sev_features
    put(0x3e8, &1u64.to_le_bytes()); // xcr0
    put(0x408, &0x1f80u32.to_le_bytes()); // mxcsr
    put(0x410, &0x037fu16.to_le_bytes()); // x87_fcw
    p
}

/// `9438d606-4f22-4cc9-b479-a793d411fd21`: the hashes table header.
const HASH_TABLE_GUID: [u8; 16] =
    guid(0x9438_d606, 0x4f22, 0x4cc9, [0xb4, 0x79, 0xa7, 0x93, 0xd4, 0x11, 0xfd, 0x21]);
/// `97d02dd8-bd20-4c94-aa78-e7714d36ab2a`: the cmdline entry.
const CMDLINE_GUID: [u8; 16] =
    guid(0x97d0_2dd8, 0xbd20, 0x4c94, [0xaa, 0x78, 0xe7, 0x71, 0x4d, 0x36, 0xab, 0x2a]);
/// `44baf731-3a2f-4bd7-9af1-41e29169781d`: the initrd entry.
const INITRD_GUID: [u8; 16] =
    guid(0x44ba_f731, 0x3a2f, 0x4bd7, [0x9a, 0xf1, 0x41, 0xe2, 0x91, 0x69, 0x78, 0x1d]);
/// `4de79437-abd2-427f-b835-d5b172d2045b`: the kernel entry.
const KERNEL_GUID: [u8; 16] =
    guid(0x4de7_9437, 0xabd2, 0x427f, [0xb8, 0x35, 0xd5, 0xb1, 0x72, 0xd2, 0x04, 0x5b]);

/// The three SHA-256 digests QEMU puts in the SEV hashes table (`kernel-hashes=on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelHashes {
    /// SHA-256 of the kernel file as given to `-kernel`.
    pub kernel: Sha256Digest,
    /// SHA-256 of the initrd, or of nothing when there is none.
    pub initrd: Sha256Digest,
    /// SHA-256 of the command line's UTF-8 bytes plus a NUL.
    pub cmdline: Sha256Digest,
}

impl KernelHashes {
    /// Hashes the boot inputs the way QEMU does: no initrd hashes as the empty string, no
    /// `-append` as an empty command line (a single NUL).
    pub fn new(kernel: &[u8], initrd: Option<&[u8]>, append: Option<&str>) -> Self {
        KernelHashes {
            kernel: sha256(kernel),
            initrd: sha256(initrd.unwrap_or_default()),
            cmdline: cmdline_sha256(append.unwrap_or_default()),
        }
    }

    /// The 168-byte table padded with zeros to 176 bytes, as QEMU writes it.
    pub fn table(&self) -> [u8; 176] {
        let mut t = [0u8; 176];
        t[0..16].copy_from_slice(&HASH_TABLE_GUID);
        t[16..18].copy_from_slice(&168u16.to_le_bytes());
        let entries =
            [(CMDLINE_GUID, self.cmdline), (INITRD_GUID, self.initrd), (KERNEL_GUID, self.kernel)];
        for (i, (g, digest)) in entries.iter().enumerate() {
            let at = 18 + i * 50;
            t[at..at + 16].copy_from_slice(g);
            t[at + 16..at + 18].copy_from_slice(&50u16.to_le_bytes());
            t[at + 18..at + 50].copy_from_slice(&digest.0);
        }
        t
    }
}

/// SHA-256 of the command line as QEMU hashes it: its UTF-8 bytes followed by a NUL.
pub fn cmdline_sha256(cmdline: &str) -> Sha256Digest {
    let mut bytes = Vec::with_capacity(cmdline.len() + 1);
    bytes.extend_from_slice(cmdline.as_bytes());
    bytes.push(0);
    sha256(&bytes)
}

/// The SNP parameters of a launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnpParams {
    /// Number of vCPUs, one VMSA each.
    pub vcpus: u32,
    /// The vCPU model.
    pub vcpu: Vcpu,
    /// The VMSA `SEV_FEATURES` field (QEMU's `sev-snp-guest` default plus host additions,
    /// e.g. 0x1 or 0x21 with DebugSwap).
    pub guest_features: u64,
}

/// One step of the SNP launch, with the launch digest after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnpEvent {
    /// What was added.
    pub description: String,
    /// The page type of the update(s).
    pub page_type: PageType,
    /// The GPA of the first page.
    pub gpa: u64,
    /// How many pages.
    pub pages: u64,
    /// The launch digest after this step.
    pub launch_digest: Sha384Digest,
}

/// An SNP launch digest and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnpMeasurement {
    /// The expected attestation report MEASUREMENT.
    pub measurement: Sha384Digest,
    /// The kernel hashes table entries, when a kernel is measured.
    pub kernel_hashes: Option<KernelHashes>,
    /// Every step in order, starting with the OVMF pages (or the OVMF hash seed).
    pub log: Vec<SnpEvent>,
}

/// The SNP launch digest from the firmware image: hashes the OVMF pages (or starts from
/// `ovmf_hash` when given), then as [`launch_digest_from_info`].
pub fn launch_digest(
    ovmf: &Ovmf<'_>,
    ovmf_hash: Option<Sha384Digest>,
    params: &SnpParams,
    kernel_hashes: Option<&KernelHashes>,
) -> Result<SnpMeasurement> {
    let ovmf_hash = match ovmf_hash {
        Some(h) => h,
        None => ovmf.snp_ovmf_hash()?,
    };
    let info = OvmfInfo {
        ovmf_hash,
        sev_hashes_table_gpa: ovmf.sev_hashes_table().map_or(0, |(gpa, _)| u64::from(gpa)),
        sev_es_reset_eip: u64::from(ovmf.sev_es_reset_eip().unwrap_or(0)),
        ovmf_sections: ovmf.sev_sections().to_vec(),
    };
    launch_digest_from_info(&info, params, kernel_hashes)
}

/// The SNP launch digest from precomputed inputs only: the OVMF facts of [`OvmfInfo`] (the
/// shape of `extract_ovmf_info.py` output) and the kernel hashes. This is what a verifier
/// without the firmware file runs.
///
/// Order (QEMU): the OVMF pages (here: the seed), the SEV metadata sections in file order, one
/// VMSA per vCPU (the BSP starts at `0xFFFFFFF0`, APs at the reset block's EIP).
pub fn launch_digest_from_info(
    info: &OvmfInfo,
    params: &SnpParams,
    kernel_hashes: Option<&KernelHashes>,
) -> Result<SnpMeasurement> {
    if params.vcpus == 0 || params.vcpus > MAX_VCPUS {
        return Err(Error::BadParameter {
            field: "vcpus",
            expected: "1 to 4096",
            actual: params.vcpus.to_string(),
        });
    }
    let sig = params.vcpu.signature()?;
    if kernel_hashes.is_some()
        && !info.ovmf_sections.iter().any(|s| {
            SevSectionType::from_u32(s.section_type) == Some(SevSectionType::SnpKernelHashes)
        })
    {
        return Err(Error::NoKernelHashesSection);
    }
    let total = info.ovmf_sections.iter().fold(0u64, |t, s| t.saturating_add(s.size));
    if total > 1 << 32 {
        return Err(Error::BadParameter {
            field: "ovmf_sections",
            expected: "sections that together fit below 4 GiB",
            actual: format!("{total} bytes"),
        });
    }
    let mut gctx = Gctx::seeded(info.ovmf_hash);
    let mut log = vec![SnpEvent {
        description: "OVMF pages (the OVMF hash)".into(),
        page_type: PageType::Normal,
        gpa: 0,
        pages: 0,
        launch_digest: gctx.current(),
    }];
    for (index, section) in info.ovmf_sections.iter().enumerate() {
        let SevSection { gpa, size, section_type } = *section;
        let kind = SevSectionType::from_u32(section_type)
            .ok_or(Error::UnknownSectionType { index, section_type })?;
        let (page_type, pages, description) = match kind {
            SevSectionType::SnpSecMem => {
                gctx.update_empty_pages(PageType::Zero, gpa, size)?;
                (PageType::Zero, size.div_ceil(PAGE_SIZE), "SNP_SEC_MEM")
            }
            SevSectionType::SnpSecrets => {
                gctx.update(PageType::Secrets, gpa, &[0; 48]);
                (PageType::Secrets, 1, "SNP_SECRETS")
            }
            SevSectionType::Cpuid => {
                gctx.update(PageType::Cpuid, gpa, &[0; 48]);
                (PageType::Cpuid, 1, "CPUID")
            }
            SevSectionType::SvsmCaa => {
                gctx.update_empty_pages(PageType::Zero, gpa, size)?;
                (PageType::Zero, size.div_ceil(PAGE_SIZE), "SVSM_CAA")
            }
            SevSectionType::SnpKernelHashes => match kernel_hashes {
                Some(hashes) => {
                    let offset = (info.sev_hashes_table_gpa & (PAGE_SIZE - 1)) as usize;
                    let mut page = [0u8; PAGE_SIZE as usize];
                    // offset < 4096 and the table is 176 bytes: it may run past the page only
                    // for offsets above 3920, which QEMU rejects too.
                    let dst = page.get_mut(offset..offset + 176).ok_or(Error::BadField {
                        what: "sev_hashes_table_gpa page offset",
                        offset: info.sev_hashes_table_gpa,
                        expected: "a table that fits in its page (offset at most 3920)",
                        actual: offset as u64,
                    })?;
                    dst.copy_from_slice(&hashes.table());
                    gctx.update(PageType::Normal, gpa, &sha384(&page).0);
                    (PageType::Normal, 1, "SNP_KERNEL_HASHES (kernel hashes table)")
                }
                None => {
                    gctx.update_empty_pages(PageType::Zero, gpa, size)?;
                    (PageType::Zero, size.div_ceil(PAGE_SIZE), "SNP_KERNEL_HASHES (no kernel)")
                }
            },
        };
        log.push(SnpEvent {
            description: format!("SEV metadata section {index}: {description}"),
            page_type,
            gpa,
            pages,
            launch_digest: gctx.current(),
        });
    }
    let ap_eip = u32::try_from(info.sev_es_reset_eip).map_err(|_| Error::BadParameter {
        field: "sev_es_reset_eip",
        expected: "a 32-bit EIP",
        actual: info.sev_es_reset_eip.to_string(),
    })?;
    if params.vcpus > 1 && ap_eip == 0 {
        return Err(Error::MissingEntry { what: "SEV-ES reset block (needed for APs)" });
    }
    let bsp = vmsa_page(BSP_EIP, params.guest_features, sig);
    let ap = vmsa_page(ap_eip, params.guest_features, sig);
    for cpu in 0..params.vcpus {
        gctx.update_vmsa(if cpu == 0 { &bsp } else { &ap });
        log.push(SnpEvent {
            description: format!("VMSA of vCPU {cpu}"),
            page_type: PageType::Vmsa,
            gpa: VMSA_GPA,
            pages: 1,
            launch_digest: gctx.current(),
        });
    }
    Ok(SnpMeasurement { measurement: gctx.finish(), kernel_hashes: kernel_hashes.copied(), log })
}

/// The SEV (plain, no ES) launch digest: SHA-256 of the firmware image, then the padded
/// kernel hashes table when a kernel is measured.
pub fn sev_launch_digest(
    ovmf: &Ovmf<'_>,
    kernel_hashes: Option<&KernelHashes>,
) -> Result<Sha256Digest> {
    Ok(Sha256Digest(sev_firmware_hash(ovmf, kernel_hashes)?.finalize().into()))
}

/// The part SEV and SEV-ES launch digests share: the firmware image, then the kernel hashes
/// table when a kernel is measured (which the firmware must have a table for).
fn sev_firmware_hash(ovmf: &Ovmf<'_>, kernel_hashes: Option<&KernelHashes>) -> Result<Sha256> {
    let mut h = Sha256::new();
    h.update(ovmf.bytes());
    if let Some(hashes) = kernel_hashes {
        if !matches!(ovmf.sev_hashes_table(), Some((gpa, _)) if gpa != 0) {
            return Err(Error::NoSevHashesTable);
        }
        h.update(hashes.table());
    }
    Ok(h)
}

/// The SEV-ES launch digest: as [`sev_launch_digest`], then one VMSA per vCPU with
/// `SEV_FEATURES` 0 (the BSP at the reset vector, APs at the reset block's EIP).
pub fn sev_es_launch_digest(
    ovmf: &Ovmf<'_>,
    vcpus: u32,
    vcpu: &Vcpu,
    kernel_hashes: Option<&KernelHashes>,
) -> Result<Sha256Digest> {
    if vcpus == 0 || vcpus > MAX_VCPUS {
        return Err(Error::BadParameter {
            field: "vcpus",
            expected: "1 to 4096",
            actual: vcpus.to_string(),
        });
    }
    let sig = vcpu.signature()?;
    let mut h = sev_firmware_hash(ovmf, kernel_hashes)?;
    let ap_eip = ovmf.sev_es_reset_eip().unwrap_or(0);
    if vcpus > 1 && ap_eip == 0 {
        return Err(Error::MissingEntry { what: "SEV-ES reset block (needed for APs)" });
    }
    h.update(vmsa_page(BSP_EIP, 0, sig));
    let ap = vmsa_page(ap_eip, 0, sig);
    for _ in 1..vcpus {
        h.update(ap);
    }
    Ok(Sha256Digest(h.finalize().into()))
}
