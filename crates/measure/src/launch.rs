//! The launch description: one plain, serde-serializable value that says how a VM is launched,
//! shared by the measurement (here) and, later, the QEMU launcher.
//!
//! The description names its files (for the launcher and the CLI, which read them) but this
//! crate never opens them: [`measure`] takes their bytes in [`LaunchBytes`].

use serde::{Deserialize, Serialize};

use crate::digest::{Sha256Digest, Sha384Digest};
use crate::ovmf::{Ovmf, OvmfInfo};
use crate::pe::DEFAULT_ACPI_DATA_SIZE;
use crate::snp::{self, KernelHashes, SnpMeasurement, SnpParams, Vcpu};
use crate::tdx::{self, AcpiDigests, Event, KernelLoad, MrtdOrder, Rtmr0Layout};
use crate::{Error, Result};

/// The trusted execution environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tee {
    /// AMD SEV-SNP.
    SevSnp,
    /// Intel TDX.
    Tdx,
}

/// A file the launch uses: where the launcher finds it, and optionally the SHA-256 it must
/// have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// The path, as the launcher and the CLI resolve it; never opened by this crate.
    pub path: String,
    /// The expected SHA-256 of the file, when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256Digest>,
}

/// The QEMU whose behaviour the measurement follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QemuProfile {
    /// QEMU's version as `[major, minor]`.
    pub version: [u16; 2],
    /// Bytes QEMU reserves for ACPI below 4 GiB (`acpi_data_size`, 0x28000 for q35).
    #[serde(default = "default_acpi_data_size")]
    pub acpi_data_size: u32,
}

fn default_acpi_data_size() -> u32 {
    DEFAULT_ACPI_DATA_SIZE
}

impl QemuProfile {
    /// QEMU 9 and later add and extend each TDVF page in one pass; 8.x TDX trees in two.
    pub fn mrtd_order(&self) -> MrtdOrder {
        if self.version[0] >= 9 { MrtdOrder::SinglePass } else { MrtdOrder::TwoPass }
    }

    /// QEMU 10.2 and later (commit a7542a38) no longer patch the setup header of a
    /// confidential guest's kernel.
    pub fn kernel_load(&self) -> KernelLoad {
        if self.version >= [10, 2] {
            KernelLoad::Unpatched
        } else {
            KernelLoad::Patched { acpi_data_size: self.acpi_data_size }
        }
    }
}

/// TDX firmware facts the firmware file alone does not give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdxFirmware {
    /// The firmware's RTMR0 event layout.
    pub rtmr0_layout: Rtmr0Layout,
    /// The ACPI digests RTMR0 measures; without them RTMR0 is not computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acpi: Option<AcpiDigests>,
}

/// How a confidential VM is launched: everything its launch measurement depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchDescription {
    /// The TEE.
    pub tee: Tee,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// The vCPU model (SEV-SNP: its signature goes into every VMSA; TDX: unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu: Option<Vcpu>,
    /// SEV-SNP `SEV_FEATURES` (0x1 by default in SecretVM, 0x21 with DebugSwap).
    #[serde(default)]
    pub guest_features: u64,
    /// Guest RAM in bytes.
    pub memory_bytes: u64,
    /// The firmware (`-bios`).
    pub firmware: FileRef,
    /// The kernel (`-kernel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<FileRef>,
    /// The initrd (`-initrd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initrd: Option<FileRef>,
    /// The kernel command line (`-append`), as given to QEMU.
    #[serde(default)]
    pub cmdline: String,
    /// The QEMU behaviour profile.
    pub qemu: QemuProfile,
    /// TDX-only firmware facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tdx: Option<TdxFirmware>,
}

/// The bytes of the files a [`LaunchDescription`] names.
#[derive(Debug, Clone, Copy)]
pub struct LaunchBytes<'a> {
    /// The firmware image.
    pub firmware: &'a [u8],
    /// The kernel, if the description has one.
    pub kernel: Option<&'a [u8]>,
    /// The initrd, if the description has one.
    pub initrd: Option<&'a [u8]>,
}

/// TDX registers and the events that produced them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdxMeasurement {
    /// MRTD.
    pub mrtd: Sha384Digest,
    /// RTMR0, when the ACPI digests were given.
    pub rtmr0: Option<Sha384Digest>,
    /// RTMR1, when a kernel was given.
    pub rtmr1: Option<Sha384Digest>,
    /// RTMR2, when a kernel was given.
    pub rtmr2: Option<Sha384Digest>,
    /// Every event in the order it is measured, per register.
    pub events: Vec<Event>,
}

/// A launch measurement with its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "tee")]
pub enum Measurement {
    /// SEV-SNP.
    SevSnp(SnpMeasurement),
    /// TDX.
    Tdx(TdxMeasurement),
}

/// Computes the measurement of `desc` launched with `bytes`.
///
/// File hashes pinned in the description are checked against the bytes first.
pub fn measure(desc: &LaunchDescription, bytes: &LaunchBytes<'_>) -> Result<Measurement> {
    check_pin("firmware", Some(&desc.firmware), Some(bytes.firmware))?;
    check_pin("kernel", desc.kernel.as_ref(), bytes.kernel)?;
    check_pin("initrd", desc.initrd.as_ref(), bytes.initrd)?;
    let ovmf = Ovmf::parse(bytes.firmware)?;
    match desc.tee {
        Tee::SevSnp => {
            let vcpu = desc.vcpu.clone().ok_or(Error::BadParameter {
                field: "vcpu",
                expected: "a vCPU type, signature or family/model/stepping for SEV-SNP",
                actual: "none".into(),
            })?;
            let params = SnpParams { vcpus: desc.vcpus, vcpu, guest_features: desc.guest_features };
            // The kernel hashes and the firmware pages are independent streams; the longer
            // one (the kernel's SHA-256) runs on this thread, which needs no start-up.
            let (ovmf_hash, hashes) = crate::par::join(
                || ovmf.snp_ovmf_hash(),
                || bytes.kernel.map(|k| KernelHashes::new(k, bytes.initrd, Some(&desc.cmdline))),
            );
            snp::launch_digest(&ovmf, Some(ovmf_hash?), &params, hashes.as_ref())
                .map(Measurement::SevSnp)
        }
        Tee::Tdx => {
            // The firmware registers and the kernel registers hash independent inputs: they
            // run side by side where threads exist (see `par::join`).
            let firmware_side = || -> Result<_> {
                let mrtd = tdx::mrtd(&ovmf, desc.qemu.mrtd_order())?;
                let mut rtmr0 = None;
                let mut events = Vec::new();
                if let Some(TdxFirmware { rtmr0_layout, acpi: Some(acpi) }) = &desc.tdx {
                    events = tdx::rtmr0_events(&ovmf, *rtmr0_layout, desc.memory_bytes, acpi)?;
                    rtmr0 = Some(tdx::replay(&events)?[0]);
                }
                Ok((mrtd, rtmr0, events))
            };
            let kernel_side = || -> Result<_> {
                let Some(kernel) = bytes.kernel else { return Ok((None, None, Vec::new())) };
                let initrd_len = bytes.initrd.map(|i| i.len() as u64);
                let mut events = tdx::rtmr1_events(
                    kernel,
                    initrd_len,
                    &desc.cmdline,
                    desc.memory_bytes,
                    desc.qemu.kernel_load(),
                )?;
                let cmdline = tdx::measured_cmdline(&desc.cmdline, bytes.initrd.is_some());
                let e2 = tdx::rtmr2_events(&cmdline, bytes.initrd);
                let rtmr1 = Some(tdx::replay(&events)?[1]);
                let rtmr2 = Some(tdx::replay(&e2)?[2]);
                events.extend(e2);
                Ok((rtmr1, rtmr2, events))
            };
            let (firmware, kernel) = crate::par::join(firmware_side, kernel_side);
            let (mrtd, rtmr0, mut events) = firmware?;
            let (rtmr1, rtmr2, kernel_events) = kernel?;
            events.extend(kernel_events);
            Ok(Measurement::Tdx(TdxMeasurement { mrtd, rtmr0, rtmr1, rtmr2, events }))
        }
    }
}

fn check_pin(what: &'static str, file: Option<&FileRef>, bytes: Option<&[u8]>) -> Result<()> {
    match (file, bytes) {
        (Some(f), Some(b)) => match f.sha256 {
            Some(want) if crate::sha256(b) != want => Err(Error::BadParameter {
                field: what,
                expected: "bytes whose SHA-256 is the pinned sha256",
                actual: crate::sha256(b).to_string(),
            }),
            _ => Ok(()),
        },
        (None, None) => Ok(()),
        (Some(_), None) => {
            Err(Error::BadParameter { field: what, expected: "its bytes", actual: "none".into() })
        }
        (None, Some(_)) => Err(Error::BadParameter {
            field: what,
            expected: "no bytes (the description has none)",
            actual: "bytes".into(),
        }),
    }
}

/// SecretVM's `config/sev_image_fingerprints.json`: the kernel and initrd SHA-256, the vCPU
/// shape and the OVMF facts, enough to recompute the SEV-SNP measurement for a cmdline
/// without any file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SevImageFingerprints {
    /// SHA-256 of the kernel.
    pub kernel_hash: Sha256Digest,
    /// SHA-256 of the initrd.
    pub initrd_hash: Sha256Digest,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// The QEMU vCPU model name.
    pub vcpu_type: String,
    /// `SEV_FEATURES`.
    pub guest_features: u64,
    /// The OVMF facts.
    #[serde(flatten)]
    pub ovmf: OvmfInfo,
}

impl SevImageFingerprints {
    /// The SEV-SNP launch digest for this image booted with `cmdline`.
    pub fn measurement(&self, cmdline: &str) -> Result<SnpMeasurement> {
        let params = SnpParams {
            vcpus: self.vcpus,
            vcpu: Vcpu::Type(self.vcpu_type.clone()),
            guest_features: self.guest_features,
        };
        let hashes = KernelHashes {
            kernel: self.kernel_hash,
            initrd: self.initrd_hash,
            cmdline: snp::cmdline_sha256(cmdline),
        };
        snp::launch_digest_from_info(&self.ovmf, &params, Some(&hashes))
    }
}
