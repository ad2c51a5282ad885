//! TEE launch measurements a verifier must expect, computed from the bytes a VM is launched
//! with, each with the log of events that produced it.
//!
//! - [`ovmf`]: the OVMF footer GUID table (walked backwards from the end of the image), the
//!   SEV-ES reset block, the SEV hashes table, the SEV metadata (`ASEV`) sections and the TDX
//!   metadata (`TDVF`) sections. [`Ovmf::info`] gives the `extract_ovmf_info.py` JSON.
//! - [`snp`]: the AMD SEV-SNP launch digest as QEMU launches a guest (OVMF pages, metadata
//!   sections, the kernel hashes page, one VMSA per vCPU), from the firmware or from
//!   precomputed hashes alone ([`snp::launch_digest_from_info`], [`SevImageFingerprints`]).
//! - [`tdx`]: MRTD (single- and two-pass), the RTMR0 (pre-edk2-stable202505 layout), RTMR1 and
//!   RTMR2 events, SecretVM and dstack RTMR3 events, event-log replay and TD quote fields.
//! - [`pe`]: the kernel as OVMF measures it: QEMU's setup-header patch and the Authenticode
//!   SHA-384.
//! - [`LaunchDescription`] and [`measure`]: one plain serde value describing a launch (TEE,
//!   vCPUs, memory, files, cmdline, QEMU profile), and the measurement it implies.
//!
//! This crate never touches the file system, never spawns processes and never prints: callers
//! hand it bytes and values. Firmware, kernels and event logs are untrusted: malformed input
//! gives an [`Error`] naming the field and offset, never a panic.
//!
//! A verifier holding only SecretVM's `sev_image_fingerprints.json` and a cmdline recomputes
//! the SEV-SNP measurement, and RTMR3 of a SecretVM TDX guest is a fold of padded SHA-256s:
//!
//! ```
//! use secretvm_measure::{SevImageFingerprints, Sha256Digest, tdx};
//!
//! let fingerprints: SevImageFingerprints = serde_json::from_str(r#"{
//!     "kernel_hash": "4ed989a39dceb959d57620105cf7106ce18179f4c5066fe25c66c047d1ac247b",
//!     "initrd_hash": "aaf687707e598a571dc355550af45fb7cfd5711f089d68a86a4077c193619f8d",
//!     "vcpus": 1, "vcpu_type": "EPYC", "guest_features": 1,
//!     "ovmf_hash": "9d0dd8be18c86e3fe3bf0038ed75ebf5340bee69fd2632c8ff9409964575960ae1f7e84be387d2e3467bc3508d1e4806",
//!     "sev_hashes_table_gpa": 8457216, "sev_es_reset_eip": 8433668,
//!     "ovmf_sections": [
//!         {"gpa": 8388608, "size": 36864, "section_type": 1},
//!         {"gpa": 8429568, "size": 12288, "section_type": 1},
//!         {"gpa": 8441856, "size": 4096, "section_type": 2},
//!         {"gpa": 8445952, "size": 4096, "section_type": 3},
//!         {"gpa": 8450048, "size": 4096, "section_type": 4},
//!         {"gpa": 8458240, "size": 126976, "section_type": 1},
//!         {"gpa": 8454144, "size": 4096, "section_type": 16}
//!     ]
//! }"#)?;
//! let cmdline = "console=ttyS0 loglevel=7 \
//!     docker_compose_hash=11b588e50cb03b268af536297738861ffa32ddac42af9da29be1e527982ce0fe \
//!     rootfs_hash=be3790c8cdf6d198484559de72c0a948a435826b3d654bc5fe8aec640c3455b2";
//! let snp = fingerprints.measurement(cmdline)?;
//! // sev-snp-measure 0.0.13 gives the same value (vector `secretvm-sev-image-fingerprints`).
//! assert_eq!(
//!     snp.measurement.to_string(),
//!     "19b0c28d7b95cba6dbd353b19cb84515fd1854933c3e49bd0b7494f916d4879c6d35b9938dc85ef2f181fed89043e863"
//! );
//!
//! let compose: Sha256Digest =
//!     "11b588e50cb03b268af536297738861ffa32ddac42af9da29be1e527982ce0fe".parse()?;
//! let rootfs: Sha256Digest =
//!     "be3790c8cdf6d198484559de72c0a948a435826b3d654bc5fe8aec640c3455b2".parse()?;
//! let events = [
//!     tdx::secretvm_native_event("docker-compose.yaml", &compose),
//!     tdx::secretvm_native_event("rootfs", &rootfs),
//! ];
//! // secret-vm-ops `rtmr_ext.sh` gives the same value (vector `rtmr3-secretvm-native-compose-rootfs`).
//! assert_eq!(
//!     tdx::replay(&events)?[3].to_string(),
//!     "34517cf60d1250eb2a5b4e15d5b09936620f6bfd3358f40d80e0848e3cbb1bfef648aadb5ad628f83496ade0313ef6a3"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `tests.rs` runs every case of the shared vectors (`$SECRETVM_VECTORS/measure/cases.json`)
//! and the malformed-input checks; [`fuzz`] holds the bodies of the cargo-fuzz targets.
//! `DESIGN.md` says which specification each step follows and which independent source each
//! value was checked against.

mod bytes;
mod digest;
mod error;
pub mod fuzz;
mod hasher;
mod launch;
pub mod ovmf;
mod par;
pub mod pe;
pub mod snp;
pub mod tdx;

#[cfg(test)]
mod tests;

pub use digest::{Sha256Digest, Sha384Digest, sha256, sha384};
pub use error::{Error, Result};
pub use launch::{
    FileRef, LaunchBytes, LaunchDescription, Measurement, QemuProfile, SevImageFingerprints,
    TdxFirmware, TdxMeasurement, Tee, measure,
};
pub use ovmf::{Ovmf, OvmfInfo};
