//! The release manifest, pure: file sizes and digests in, the text of `sha256sum.txt`,
//! `digest.txt` and `manifest.json` out, plus the expected measurements of a machine computed
//! from its launch files' bytes with `secretvm-measure`.
//!
//! - `sha256sum.txt`: one `<sha256 hex>  <path>` line per collected file, paths relative to the
//!   output directory, sorted bytewise; `sha256sum -c sha256sum.txt` checks it from there.
//! - `digest.txt`: the SHA-256 of `sha256sum.txt` and a newline: one value naming every byte of
//!   the release artifacts (the manifest files themselves are not listed).
//! - `manifest.json`: the format version, the git revision and lock-file hash given by the
//!   caller, that digest, every file's size and SHA-256, and per machine the expected launch
//!   measurements with the VM shape they assume.
//!
//! Nothing here reads a clock, the environment or a file: the same values give the same bytes.
//! JSON keys come out in declaration order.

use serde::Serialize;

use secretvm_measure::tdx::{self, KernelLoad, MrtdOrder};
use secretvm_measure::{Ovmf, SevImageFingerprints, Sha256Digest, Sha384Digest};

/// The `manifest.json` format version.
pub const FORMAT_VERSION: u32 = 1;

/// The manifest's file names: the checksum list, the file holding its SHA-256, and
/// `manifest.json` (the names `secretvm-artifact` compares releases by).
pub use secretvm_artifact::compare::{DIGEST, MANIFEST, SHA256SUM};

/// The three manifest files, in the order [`crate::collect::write_manifest`] writes them.
pub const FILES: [&str; 3] = [SHA256SUM, DIGEST, MANIFEST];

/// The firmware artifact QEMU gets with `-bios`.
pub const FIRMWARE: &str = "ovmf.fd";
/// The kernel artifact QEMU gets with `-kernel`.
pub const KERNEL: &str = "bzImage";
/// The initramfs artifact QEMU gets with `-initrd`.
pub const INITRD: &str = "initramfs.cpio.gz";

/// The TDX kernel command line of upstream's `start_vm_*_tdx.sh` (`-append`); OVMF adds
/// ` initrd=initrd`.
pub const TDX_CMDLINE: &str = "console=ttyS0 loglevel=7 clearcpuid=mtrr,rtmr ro";
/// Guest RAM of upstream's start_vm scripts (`-m 2G`).
pub const MEMORY_BYTES: u64 = 2 << 30;
/// vCPUs of upstream's start_vm scripts (`-smp 1`; SEV: `vcpus` 1 in the fingerprints).
pub const VCPUS: u32 = 1;
/// The SEV vCPU model (`-cpu EPYC`).
pub const SEV_VCPU_TYPE: &str = "EPYC";
/// The SEV `SEV_FEATURES` (`guest_features` 0x1 in the fingerprints).
pub const SEV_GUEST_FEATURES: u64 = 0x1;

/// One collected file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// The path relative to the output directory, `/`-separated.
    pub path: String,
    /// The size in bytes.
    #[serde(rename = "size")]
    pub len: u64,
    /// The SHA-256 of its bytes.
    pub sha256: Sha256Digest,
}

/// The launch files of one machine, as bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct LaunchFiles<'a> {
    /// [`FIRMWARE`].
    pub firmware: Option<&'a [u8]>,
    /// [`KERNEL`].
    pub kernel: Option<&'a [u8]>,
    /// [`INITRD`].
    pub initrd: Option<&'a [u8]>,
}

/// One machine in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineReport {
    /// The multiconfig name (`tdx`), also the artifacts subdirectory.
    pub name: String,
    /// The MACHINE (`secret-vm-tdx`).
    pub machine: String,
    /// The expected measurements.
    pub expected: Expected,
}

/// A value the manifest does not give, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotComputed {
    /// Always `false`.
    pub computed: bool,
    /// Why, and how a verifier gets the value.
    pub reason: &'static str,
}

impl NotComputed {
    fn because(reason: &'static str) -> NotComputed {
        NotComputed { computed: false, reason }
    }
}

/// The expected launch measurements of a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "tee")]
pub enum Expected {
    /// Intel TDX (machine `tdx`).
    Tdx(Box<TdxExpected>),
    /// AMD SEV-SNP (machine `sev`).
    SevSnp(Box<SevExpected>),
    /// No launch measurement is modelled for this machine.
    None(NotComputed),
}

/// The VM shape a TDX measurement assumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdxLaunch {
    /// vCPUs (`-smp`); MRTD, RTMR1 and RTMR2 do not depend on it.
    pub vcpus: u32,
    /// Guest RAM (`-m`); QEMU's setup-header patch (RTMR1) depends on it.
    pub memory_bytes: u64,
    /// `-append`.
    pub cmdline: String,
    /// What the kernel's EFI stub measures into RTMR2: the cmdline plus OVMF's ` initrd=initrd`.
    pub measured_cmdline: String,
    /// QEMU's `acpi_data_size` for q35 (the setup-header patch of QEMU ≤ 10.1).
    pub qemu_acpi_data_size: u32,
}

/// MRTD under each QEMU TDVF loading order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdxMrtd {
    /// QEMU 9 and later (and upstream QEMU's TDX support): each page added and extended in one
    /// pass.
    pub qemu_9_and_later: Sha384Digest,
    /// QEMU 8.x TDX trees: all pages added, then all extended.
    pub qemu_8: Sha384Digest,
}

/// RTMR1 under each way QEMU serves the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdxRtmr1 {
    /// QEMU 10.1 and older patch the kernel's setup header before OVMF measures it.
    pub qemu_up_to_10_1: Sha384Digest,
    /// QEMU 10.2 and later serve the kernel file unchanged to confidential guests.
    pub qemu_10_2_and_later: Sha384Digest,
}

/// The expected TDX registers of a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdxExpected {
    /// The launch these values assume.
    pub launch: TdxLaunch,
    /// MRTD, from the firmware.
    pub mrtd: TdxMrtd,
    /// RTMR0: not computed.
    pub rtmr0: NotComputed,
    /// RTMR1, from the kernel.
    pub rtmr1: TdxRtmr1,
    /// RTMR2, from the measured cmdline and the initramfs.
    pub rtmr2: Sha384Digest,
    /// RTMR3: per VM.
    pub rtmr3: NotComputed,
}

/// What the SEV-SNP measurement of a machine is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SevExpected {
    /// Upstream's `sev_image_fingerprints.json`: kernel and initrd SHA-256, the vCPU shape and
    /// the OVMF facts (the fields of `secretvm measure ovmf-info`).
    pub fingerprints: SevImageFingerprints,
    /// The `-append` of upstream's SEV start_vm scripts, with the per-VM values as placeholders.
    pub cmdline_template: &'static str,
    /// The launch digest itself: not computed.
    pub measurement: NotComputed,
}

const RTMR0_REASON: &str = "RTMR0 measures QEMU's ACPI tables (etc/table-loader, etc/acpi/rsdp, \
     etc/acpi/tables), which depend on the QEMU version and the whole VM shape (devices, memory, \
     vCPUs), not on these files; compute it with `secretvm measure tdx --acpi-loader \
     --acpi-rsdp --acpi-tables` from the host's tables";
const RTMR3_REASON: &str = "RTMR3 is extended at boot by the initramfs with the zero-padded \
     SHA-256 of docker-compose.yaml, of the rootfs ISO (see files) and of docker-files.tar when \
     present, which are per VM; compute it with `secretvm measure rtmr3`";
const SNP_REASON: &str = "the SEV-SNP launch digest covers the SHA-256 of the kernel command \
     line (SEV hashes table), and the cmdline carries per-VM values (docker_compose_hash, \
     rootfs_hash); compute it from fingerprints and the VM's cmdline with `secretvm measure snp \
     --fingerprints FILE --append CMDLINE`";
const SEV_CMDLINE_TEMPLATE: &str = "console=ttyS0 loglevel=7 \
     docker_compose_hash=<sha256 of docker-compose.yaml> rootfs_hash=<sha256 of the rootfs ISO>";
const NO_LAUNCH_REASON: &str = "this machine has no ovmf.fd, bzImage and initramfs.cpio.gz of \
     its own to measure (the GCP kernel and initramfs are inside the wic disk, launched by \
     Google's firmware)";

/// The TEE of a machine, by its multiconfig name: `tdx` is Intel TDX and `sev` AMD SEV-SNP;
/// other machines (`gcp-tdx`) get no launch measurement.
fn tee_of(machine: &str) -> Option<secretvm_measure::Tee> {
    match machine {
        "tdx" => Some(secretvm_measure::Tee::Tdx),
        "sev" => Some(secretvm_measure::Tee::SevSnp),
        _ => None,
    }
}

/// The expected measurements of machine `machine` launched with `files` as upstream's start_vm
/// scripts launch it.
pub fn expected(machine: &str, files: &LaunchFiles<'_>) -> secretvm_measure::Result<Expected> {
    let (Some(tee), Some(firmware), Some(kernel), Some(initrd)) =
        (tee_of(machine), files.firmware, files.kernel, files.initrd)
    else {
        return Ok(Expected::None(NotComputed::because(NO_LAUNCH_REASON)));
    };
    let ovmf = Ovmf::parse(firmware)?;
    match tee {
        secretvm_measure::Tee::Tdx => {
            let acpi_data_size = secretvm_measure::pe::DEFAULT_ACPI_DATA_SIZE;
            let initrd_len = Some(initrd.len() as u64);
            let rtmr1 = |load| -> secretvm_measure::Result<Sha384Digest> {
                let events =
                    tdx::rtmr1_events(kernel, initrd_len, TDX_CMDLINE, MEMORY_BYTES, load)?;
                Ok(tdx::replay(&events)?[1])
            };
            let measured_cmdline = tdx::measured_cmdline(TDX_CMDLINE, true);
            let rtmr2 = tdx::replay(&tdx::rtmr2_events(&measured_cmdline, Some(initrd)))?[2];
            Ok(Expected::Tdx(Box::new(TdxExpected {
                launch: TdxLaunch {
                    vcpus: VCPUS,
                    memory_bytes: MEMORY_BYTES,
                    cmdline: TDX_CMDLINE.to_owned(),
                    measured_cmdline,
                    qemu_acpi_data_size: acpi_data_size,
                },
                mrtd: TdxMrtd {
                    qemu_9_and_later: tdx::mrtd(&ovmf, MrtdOrder::SinglePass)?,
                    qemu_8: tdx::mrtd(&ovmf, MrtdOrder::TwoPass)?,
                },
                rtmr0: NotComputed::because(RTMR0_REASON),
                rtmr1: TdxRtmr1 {
                    qemu_up_to_10_1: rtmr1(KernelLoad::Patched { acpi_data_size })?,
                    qemu_10_2_and_later: rtmr1(KernelLoad::Unpatched)?,
                },
                rtmr2,
                rtmr3: NotComputed::because(RTMR3_REASON),
            })))
        }
        secretvm_measure::Tee::SevSnp => Ok(Expected::SevSnp(Box::new(SevExpected {
            fingerprints: SevImageFingerprints {
                kernel_hash: secretvm_measure::sha256(kernel),
                initrd_hash: secretvm_measure::sha256(initrd),
                vcpus: VCPUS,
                vcpu_type: SEV_VCPU_TYPE.to_owned(),
                guest_features: SEV_GUEST_FEATURES,
                ovmf: ovmf.info()?,
            },
            cmdline_template: SEV_CMDLINE_TEMPLATE,
            measurement: NotComputed::because(SNP_REASON),
        }))),
    }
}

/// The text of `sha256sum.txt`: `<hex>  <path>` lines sorted bytewise by path.
pub fn sha256sum_txt(files: &[FileEntry]) -> String {
    let mut sorted: Vec<&FileEntry> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    sorted.iter().map(|f| format!("{}  {}\n", f.sha256, f.path)).collect()
}

/// The text of `digest.txt`: the SHA-256 of `sha256sum_txt` in hex, and a newline.
pub fn digest_txt(sha256sum_txt: &str) -> String {
    format!("{}\n", secretvm_measure::sha256(sha256sum_txt.as_bytes()))
}

/// What `manifest.json` records besides the files' own values.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The git revision of the workspace the release was built from.
    pub git_revision: Option<&'a str>,
    /// The SHA-256 (hex) of the lock file, when there is one.
    pub lock_sha256: Option<&'a str>,
    /// The content of `digest.txt`, without the newline.
    pub digest: &'a str,
    /// Whether every machine and every artifact of the config is in it (`false` after
    /// `--machine` or `--artifact`): a digest of part of a release is not the release's.
    pub complete: bool,
    /// The collected files (sorted by path in the output).
    pub files: &'a [FileEntry],
    /// The machines, in config order.
    pub machines: &'a [MachineReport],
}

#[derive(Serialize)]
struct Manifest<'a> {
    format_version: u32,
    git_revision: Option<&'a str>,
    lock_sha256: Option<&'a str>,
    source_date_epoch: u64,
    digest: &'a str,
    complete: bool,
    files: Vec<&'a FileEntry>,
    machines: &'a [MachineReport],
}

/// The text of `manifest.json`: pretty-printed, keys in a fixed order, files sorted by path,
/// a final newline.
pub fn manifest_json(inputs: &Inputs<'_>) -> serde_json::Result<String> {
    let mut files: Vec<&FileEntry> = inputs.files.iter().collect();
    files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        git_revision: inputs.git_revision,
        lock_sha256: inputs.lock_sha256,
        source_date_epoch: crate::collect::SOURCE_DATE_EPOCH,
        digest: inputs.digest,
        complete: inputs.complete,
        files,
        machines: inputs.machines,
    };
    let mut text = serde_json::to_string_pretty(&manifest)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256 of "abc" and of "" (FIPS 180-2 appendix B.1; the empty-message value).
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn file(path: &str, hex: &str) -> FileEntry {
        FileEntry { path: path.to_owned(), len: 3, sha256: hex.parse().unwrap() }
    }

    #[test]
    fn sha256sum_lines_are_sorted_bytewise_with_two_spaces() {
        let files = [
            file("tdx/b", ABC),
            file("tdx-x", EMPTY),
            file("encryptedfs.qcow2", ABC),
            file("tdx/a", EMPTY),
        ];
        // '-' (0x2d) sorts before '/' (0x2f), whatever the locale.
        assert_eq!(
            sha256sum_txt(&files),
            format!("{ABC}  encryptedfs.qcow2\n{EMPTY}  tdx-x\n{EMPTY}  tdx/a\n{ABC}  tdx/b\n")
        );
        assert_eq!(sha256sum_txt(&[]), "");
        // The digest of an empty list is the SHA-256 of nothing.
        assert_eq!(digest_txt(""), format!("{EMPTY}\n"));
        assert_eq!(digest_txt("abc"), format!("{ABC}\n"));
    }

    #[test]
    fn machines_without_launch_files_get_no_measurement() {
        let none = expected("gcp-tdx", &LaunchFiles::default()).unwrap();
        assert!(matches!(none, Expected::None(NotComputed { computed: false, .. })));
        // A TDX machine whose files are missing (a config without them) is not measured either.
        let none = expected("tdx", &LaunchFiles { firmware: Some(b"x"), ..Default::default() });
        assert!(matches!(none, Ok(Expected::None(_))));
        // Files that are not firmware are an error, not a panic.
        let files = LaunchFiles { firmware: Some(b"x"), kernel: Some(b"k"), initrd: Some(b"i") };
        assert!(expected("tdx", &files).is_err());
    }

    #[test]
    fn the_json_has_a_fixed_key_order_and_no_time() {
        let files = [file("tdx/b", ABC), file("encryptedfs.qcow2", EMPTY)];
        let machines = [MachineReport {
            name: "gcp-tdx".into(),
            machine: "secret-vm-gcp-tdx".into(),
            expected: Expected::None(NotComputed::because("why")),
        }];
        let inputs = Inputs {
            git_revision: Some("abc"),
            lock_sha256: None,
            digest: "d",
            complete: false,
            files: &files,
            machines: &machines,
        };
        let json = manifest_json(&inputs).unwrap();
        expect_test::expect![[r#"
            {
              "format_version": 1,
              "git_revision": "abc",
              "lock_sha256": null,
              "source_date_epoch": 946684800,
              "digest": "d",
              "complete": false,
              "files": [
                {
                  "path": "encryptedfs.qcow2",
                  "size": 3,
                  "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                },
                {
                  "path": "tdx/b",
                  "size": 3,
                  "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                }
              ],
              "machines": [
                {
                  "name": "gcp-tdx",
                  "machine": "secret-vm-gcp-tdx",
                  "expected": {
                    "tee": "none",
                    "computed": false,
                    "reason": "why"
                  }
                }
              ]
            }
        "#]]
        .assert_eq(&json);
    }
}
