//! `secretvm measure ...`: reads the files a launch uses, hands their bytes to
//! `secretvm_measure`, and prints the expected measurement (hex by default, the full result
//! with its event log under `--json`). Flag names follow sev-snp-measure where the concept is
//! the same.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use secretvm_artifact::MappedFile;
use secretvm_measure::snp::{self, KernelHashes, SnpParams, Vcpu};
use secretvm_measure::tdx::{self, AcpiDigests, Rtmr0Layout};
use secretvm_measure::{
    FileRef, LaunchBytes, LaunchDescription, Measurement, Ovmf, QemuProfile, SevImageFingerprints,
    Sha256Digest, Sha384Digest, TdxFirmware, Tee,
};

/// Expected TEE launch measurements.
#[derive(Subcommand)]
pub(crate) enum Measure {
    /// Print the OVMF facts SEV-SNP verifiers need, as SecretVM's extract_ovmf_info.py does
    /// (ovmf_hash, sev_hashes_table_gpa, sev_es_reset_eip, ovmf_sections).
    OvmfInfo(OvmfInfoArgs),
    /// The SEV-SNP launch digest (the attestation report's MEASUREMENT); with --mode, the SEV
    /// or SEV-ES launch digest.
    Snp(SnpArgs),
    /// TDX MRTD, and RTMR0-2 when a kernel (and ACPI digests for RTMR0) are given.
    Tdx(TdxArgs),
    /// RTMR3 of a SecretVM TDX guest from the SHA-256 of what init extends.
    Rtmr3(Rtmr3Args),
    /// Fold an event log into RTMR values and compare them with a quote's.
    Replay(ReplayArgs),
}

#[derive(Args)]
pub(crate) struct OvmfInfoArgs {
    /// The OVMF image.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
}

/// The SEV generation, as sev-snp-measure's `--mode` names it.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SevMode {
    /// SEV-SNP.
    Snp,
    /// SEV-ES.
    Seves,
    /// Plain SEV.
    Sev,
}

#[derive(Args)]
pub(crate) struct SnpArgs {
    /// Which launch digest to compute.
    #[arg(long, value_enum, default_value_t = SevMode::Snp)]
    pub(crate) mode: SevMode,
    /// The OVMF image (still needed with --snp-ovmf-hash, for its metadata).
    #[arg(long, value_name = "FILE", required_unless_present = "fingerprints")]
    pub(crate) ovmf: Option<PathBuf>,
    /// Compute from SecretVM's sev_image_fingerprints.json instead of files (needs --append).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["ovmf", "kernel", "initrd"])]
    pub(crate) fingerprints: Option<PathBuf>,
    /// The kernel QEMU gets with -kernel (kernel-hashes=on).
    #[arg(long, value_name = "FILE")]
    pub(crate) kernel: Option<PathBuf>,
    /// The initrd.
    #[arg(long, value_name = "FILE", requires = "kernel")]
    pub(crate) initrd: Option<PathBuf>,
    /// The kernel command line (-append).
    #[arg(long, value_name = "CMDLINE", allow_hyphen_values = true)]
    pub(crate) append: Option<String>,
    /// Number of vCPUs.
    #[arg(long, default_value_t = 1)]
    pub(crate) vcpus: u32,
    /// QEMU vCPU model: EPYC, EPYC-v1..v4, EPYC-Rome, EPYC-Milan, EPYC-Genoa, EPYC-Turin, -vN.
    #[arg(long, value_name = "TYPE")]
    pub(crate) vcpu_type: Option<String>,
    /// The vCPU signature (CPUID 1 EAX), e.g. 0xa00f11.
    #[arg(long, value_name = "SIG", value_parser = parse_u64)]
    pub(crate) vcpu_sig: Option<u64>,
    /// The vCPU family (with --vcpu-model and --vcpu-stepping).
    #[arg(long, requires_all = ["vcpu_model", "vcpu_stepping"])]
    pub(crate) vcpu_family: Option<u32>,
    /// The vCPU model.
    #[arg(long)]
    pub(crate) vcpu_model: Option<u32>,
    /// The vCPU stepping.
    #[arg(long)]
    pub(crate) vcpu_stepping: Option<u32>,
    /// SEV_FEATURES of every VMSA.
    #[arg(long, default_value = "0x1", value_parser = parse_u64)]
    pub(crate) guest_features: u64,
    /// Start from this precomputed OVMF hash (hex) instead of hashing the OVMF pages.
    #[arg(long, value_name = "HEX")]
    pub(crate) snp_ovmf_hash: Option<String>,
    /// Print the full result with its log as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct TdxArgs {
    /// The TDVF/OVMF image.
    #[arg(long, value_name = "FILE")]
    pub(crate) ovmf: PathBuf,
    /// The kernel (-kernel).
    #[arg(long, value_name = "FILE")]
    pub(crate) kernel: Option<PathBuf>,
    /// The initrd (-initrd).
    #[arg(long, value_name = "FILE", requires = "kernel")]
    pub(crate) initrd: Option<PathBuf>,
    /// The kernel command line (-append), without the " initrd=initrd" OVMF adds.
    #[arg(long, value_name = "CMDLINE", allow_hyphen_values = true, default_value = "")]
    pub(crate) append: String,
    /// Guest RAM (-m), in bytes or with a k, M, G or T suffix.
    #[arg(long, value_name = "SIZE", default_value = "2G")]
    pub(crate) memory: String,
    /// Number of vCPUs.
    #[arg(long, default_value_t = 1)]
    pub(crate) vcpus: u32,
    /// The QEMU version whose behaviour to follow: <9 adds TDVF pages in two passes, <10.2
    /// patches the kernel's setup header.
    #[arg(long, value_name = "MAJOR.MINOR", default_value = "9.2")]
    pub(crate) qemu_version: String,
    /// SHA-384 of etc/table-loader as OVMF measures it (with --acpi-rsdp and --acpi-tables:
    /// RTMR0 is computed only with all three).
    #[arg(long, value_name = "HEX", requires_all = ["acpi_rsdp", "acpi_tables"])]
    pub(crate) acpi_loader: Option<String>,
    /// SHA-384 of etc/acpi/rsdp.
    #[arg(long, value_name = "HEX")]
    pub(crate) acpi_rsdp: Option<String>,
    /// SHA-384 of etc/acpi/tables.
    #[arg(long, value_name = "HEX")]
    pub(crate) acpi_tables: Option<String>,
    /// The raw etc/table-loader fw_cfg file instead of its digest (as a guest reads it from
    /// /sys/firmware/qemu_fw_cfg/by_name/etc/table-loader/raw; OVMF measures these bytes).
    #[arg(long, value_name = "FILE", conflicts_with = "acpi_loader")]
    #[arg(requires_all = ["acpi_rsdp_file", "acpi_tables_file"])]
    pub(crate) acpi_loader_file: Option<PathBuf>,
    /// The raw etc/acpi/rsdp fw_cfg file instead of its digest.
    #[arg(long, value_name = "FILE", conflicts_with = "acpi_rsdp", requires = "acpi_loader_file")]
    pub(crate) acpi_rsdp_file: Option<PathBuf>,
    /// The raw etc/acpi/tables fw_cfg file instead of its digest.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "acpi_tables",
        requires = "acpi_loader_file"
    )]
    pub(crate) acpi_tables_file: Option<PathBuf>,
    /// Print the full result with its event log as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct Rtmr3Args {
    /// SHA-256 values extended in order, as `attest-tool extendrt 3` (tdx) and
    /// `secretvm-guest extend-rtmr 3` (gcp-tdx) get them (SecretVM native mode:
    /// docker-compose.yaml, the OS image, docker-files.tar).
    #[arg(long = "value", value_name = "SHA256_HEX", conflicts_with = "event")]
    pub(crate) values: Vec<String>,
    /// Files whose SHA-256 is extended, in order (instead of --value).
    #[arg(long = "file", value_name = "FILE", conflicts_with = "event")]
    pub(crate) files: Vec<PathBuf>,
    /// A VM's config directory, read as the TDX initramfs init reads it: `secret-vm.json`
    /// (`KMS` selects the mode: `dstack` or `gramine` give dstack events with `dstack_app_id`
    /// as the app-id, anything else SecretVM native values), `docker-compose.yaml`, and
    /// `docker-files.tar` when present. Needs --rootfs or --rootfs-hash.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["values", "files", "event"])]
    pub(crate) config_dir: Option<PathBuf>,
    /// The rootfs ISO the VM boots from (the init hashes the whole device), with --config-dir.
    #[arg(long, value_name = "FILE", requires = "config_dir", conflicts_with = "rootfs_hash")]
    pub(crate) rootfs: Option<PathBuf>,
    /// The rootfs ISO's SHA-256 instead of the file, with --config-dir.
    #[arg(long, value_name = "SHA256_HEX", requires = "config_dir")]
    pub(crate) rootfs_hash: Option<String>,
    /// dstack-mode events NAME=PAYLOAD_HEX in order (app-id, compose-hash, os-image-hash,
    /// docker-files-hash).
    #[arg(long = "event", value_name = "NAME=HEX")]
    pub(crate) event: Vec<String>,
    /// Print the events and the register as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct ReplayArgs {
    /// A dstack GetQuote response (JSON with `quote` and `event_log`).
    #[arg(long, value_name = "FILE")]
    pub(crate) getquote: PathBuf,
    /// Print the replay as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_u64(s: &str) -> std::result::Result<u64, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s:?}: {e}"))
}

/// SHA-256 of a file, hashed from a read-only map.
fn sha256_file(path: &Path) -> Result<Sha256Digest> {
    let file = map(path)?;
    let digest = secretvm_measure::sha256(&file);
    file.ensure_unchanged()?;
    Ok(digest)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A measured input file (firmware, kernel, initrd), mapped read-only: measuring hashes it
/// once, and a map avoids faulting in a fresh copy (see `secretvm_artifact::MappedFile`).
/// Callers check [`MappedFile::ensure_unchanged`] after hashing.
fn map(path: &Path) -> Result<MappedFile> {
    Ok(MappedFile::open(path)?)
}

/// Prints pretty JSON (serialized by the caller, so struct field order is kept).
fn print_json(json: String) -> Result<()> {
    writeln!(io::stdout().lock(), "{json}")?;
    Ok(())
}

fn file_ref(path: &Path) -> FileRef {
    FileRef { path: path.display().to_string(), sha256: None }
}

/// Runs one `secretvm measure` subcommand.
pub(crate) fn run(cmd: Measure) -> Result<()> {
    match cmd {
        Measure::OvmfInfo(args) => {
            let bytes = map(&args.file)?;
            let info = Ovmf::parse(&bytes).and_then(|o| o.info()).with_context(|| {
                format!("cannot read the OVMF metadata of {}", args.file.display())
            })?;
            print_json(serde_json::to_string_pretty(&info)?)
        }
        Measure::Snp(args) => snp(args),
        Measure::Tdx(args) => tdx(args),
        Measure::Rtmr3(args) => rtmr3(args),
        Measure::Replay(args) => replay(args),
    }
}

fn snp(args: SnpArgs) -> Result<()> {
    let m = if let Some(path) = &args.fingerprints {
        let f: SevImageFingerprints = serde_json::from_slice(&read(path)?)
            .with_context(|| format!("{} is not a sev_image_fingerprints.json", path.display()))?;
        let Some(append) = &args.append else { bail!("--fingerprints needs --append") };
        f.measurement(append)?
    } else {
        let vcpu = match (&args.vcpu_type, args.vcpu_sig, args.vcpu_family) {
            (Some(t), None, None) => Vcpu::Type(t.clone()),
            (None, Some(sig), None) => {
                Vcpu::Signature(u32::try_from(sig).context("--vcpu-sig is above 32 bits")?)
            }
            (None, None, Some(family)) => Vcpu::FamilyModelStepping {
                family,
                model: args.vcpu_model.unwrap_or_default(),
                stepping: args.vcpu_stepping.unwrap_or_default(),
            },
            (None, None, None) if args.mode == SevMode::Sev => Vcpu::Signature(0),
            _ => bail!("give exactly one of --vcpu-type, --vcpu-sig, --vcpu-family"),
        };
        let Some(ovmf_path) = &args.ovmf else { bail!("--ovmf is required") };
        // The kernel and initrd SHA-256 (the longer job: one 12 MB stream) run here, at once;
        // the firmware pages are hashed on a second thread, whose start can lag by a
        // millisecond or more while the other CPU wakes up.
        let (hashes, firmware) = std::thread::scope(|s| -> Result<_> {
            let firmware = s.spawn(|| {
                map(ovmf_path).and_then(|firmware| {
                    let seed = match &args.snp_ovmf_hash {
                        Some(h) => Some(Sha384Digest::from_hex("--snp-ovmf-hash", h)?),
                        None if args.mode == SevMode::Snp => {
                            Ovmf::parse(&firmware).and_then(|o| o.snp_ovmf_hash()).ok()
                        }
                        None => None,
                    };
                    Ok((firmware, seed))
                })
            });
            let hashes = (|| -> Result<Option<KernelHashes>> {
                let Some(kernel) = args.kernel.as_deref().map(sha256_file).transpose()? else {
                    return Ok(None);
                };
                let initrd = match args.initrd.as_deref() {
                    Some(path) => sha256_file(path)?,
                    None => secretvm_measure::sha256(&[]),
                };
                let cmdline = snp::cmdline_sha256(args.append.as_deref().unwrap_or_default());
                Ok(Some(KernelHashes { kernel, initrd, cmdline }))
            })();
            let firmware = firmware.join().map_err(|_| anyhow::anyhow!("hashing panicked"))?;
            Ok((hashes?, firmware?))
        })?;
        let (firmware, seed) = firmware;
        let ovmf = Ovmf::parse(&firmware)
            .with_context(|| format!("cannot read the OVMF metadata of {}", ovmf_path.display()))?;
        match args.mode {
            SevMode::Snp => {}
            SevMode::Seves => {
                let digest = snp::sev_es_launch_digest(&ovmf, args.vcpus, &vcpu, hashes.as_ref())?;
                firmware.ensure_unchanged()?;
                writeln!(io::stdout().lock(), "{digest}")?;
                return Ok(());
            }
            SevMode::Sev => {
                let digest = snp::sev_launch_digest(&ovmf, hashes.as_ref())?;
                firmware.ensure_unchanged()?;
                writeln!(io::stdout().lock(), "{digest}")?;
                return Ok(());
            }
        }
        let params = SnpParams { vcpus: args.vcpus, vcpu, guest_features: args.guest_features };
        let m = snp::launch_digest(&ovmf, seed, &params, hashes.as_ref())?;
        firmware.ensure_unchanged()?;
        m
    };
    if args.json {
        print_json(serde_json::to_string_pretty(&m)?)
    } else {
        writeln!(io::stdout().lock(), "{}", m.measurement)?;
        Ok(())
    }
}

fn tdx(args: TdxArgs) -> Result<()> {
    let memory_bytes = secretvm_qcow2::parse_size(&args.memory)
        .with_context(|| format!("invalid --memory {:?}", args.memory))?;
    let version = parse_version(&args.qemu_version)?;
    let acpi = match (&args.acpi_loader, &args.acpi_rsdp, &args.acpi_tables) {
        (Some(l), Some(r), Some(t)) => Some(AcpiDigests {
            loader: Sha384Digest::from_hex("--acpi-loader", l)?,
            rsdp: Sha384Digest::from_hex("--acpi-rsdp", r)?,
            tables: Sha384Digest::from_hex("--acpi-tables", t)?,
        }),
        _ => match (&args.acpi_loader_file, &args.acpi_rsdp_file, &args.acpi_tables_file) {
            (Some(l), Some(r), Some(t)) => {
                Some(AcpiDigests::from_blobs(&read(l)?, &read(r)?, &read(t)?))
            }
            _ => None,
        },
    };
    let desc = LaunchDescription {
        tee: Tee::Tdx,
        vcpus: args.vcpus,
        vcpu: None,
        guest_features: 0,
        memory_bytes,
        firmware: file_ref(&args.ovmf),
        kernel: args.kernel.as_deref().map(file_ref),
        initrd: args.initrd.as_deref().map(file_ref),
        cmdline: args.append.clone(),
        qemu: QemuProfile { version, acpi_data_size: secretvm_measure::pe::DEFAULT_ACPI_DATA_SIZE },
        tdx: Some(TdxFirmware { rtmr0_layout: Rtmr0Layout::Pre202505, acpi }),
    };
    let firmware = map(&args.ovmf)?;
    let kernel = args.kernel.as_deref().map(map).transpose()?;
    let initrd = args.initrd.as_deref().map(map).transpose()?;
    let bytes =
        LaunchBytes { firmware: &firmware, kernel: kernel.as_deref(), initrd: initrd.as_deref() };
    let Measurement::Tdx(m) = secretvm_measure::measure(&desc, &bytes)? else {
        bail!("a TDX launch gave a non-TDX measurement");
    };
    for file in std::iter::once(&firmware).chain(&kernel).chain(&initrd) {
        file.ensure_unchanged()?;
    }
    if args.json {
        return print_json(serde_json::to_string_pretty(&m)?);
    }
    let mut out = io::stdout().lock();
    writeln!(out, "mrtd: {}", m.mrtd)?;
    for (name, value) in [("rtmr0", m.rtmr0), ("rtmr1", m.rtmr1), ("rtmr2", m.rtmr2)] {
        if let Some(v) = value {
            writeln!(out, "{name}: {v}")?;
        }
    }
    Ok(())
}

fn parse_version(s: &str) -> Result<[u16; 2]> {
    let mut parts = s.split('.').map(str::parse::<u16>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Ok([major, minor]),
        (Some(Ok(major)), None) => Ok([major, 0]),
        _ => bail!("invalid --qemu-version {s:?}: expected MAJOR.MINOR[.PATCH]"),
    }
}

/// The RTMR3 events the TDX init extends for a config directory (see [`Rtmr3Args::config_dir`]).
fn config_dir_events(dir: &Path, args: &Rtmr3Args) -> Result<Vec<tdx::Event>> {
    let config_path = dir.join("secret-vm.json");
    let config: serde_json::Value = serde_json::from_slice(&read(&config_path)?)
        .with_context(|| format!("{} is not JSON", config_path.display()))?;
    let compose = sha256_file(&dir.join("docker-compose.yaml"))?;
    let rootfs = match (&args.rootfs, &args.rootfs_hash) {
        (Some(path), None) => sha256_file(path)?,
        (None, Some(hex)) => Sha256Digest::from_hex("--rootfs-hash", hex)?,
        _ => bail!("--config-dir needs --rootfs ISO or --rootfs-hash SHA256_HEX"),
    };
    let docker_files_path = dir.join("docker-files.tar");
    let docker_files = match fs::metadata(&docker_files_path) {
        Ok(_) => Some(sha256_file(&docker_files_path)?),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => {
            return Err(err)
                .with_context(|| format!("cannot read {}", docker_files_path.display()));
        }
    };
    let kms = config.get("KMS").and_then(serde_json::Value::as_str).unwrap_or_default();
    if matches!(kms, "dstack" | "gramine") {
        let Some(app_id) = config.get("dstack_app_id").and_then(serde_json::Value::as_str) else {
            bail!(
                "{}: KMS is {kms:?}, so the init extends a dstack app-id event, but there is no \
                 `dstack_app_id` string",
                config_path.display()
            );
        };
        let app_id = hex::decode(app_id).with_context(|| {
            format!("{}: dstack_app_id {app_id:?} is not hex", config_path.display())
        })?;
        let mut events = vec![
            tdx::dstack_event("app-id", &app_id),
            tdx::dstack_event("compose-hash", compose.as_bytes()),
            tdx::dstack_event("os-image-hash", rootfs.as_bytes()),
        ];
        if let Some(d) = docker_files {
            events.push(tdx::dstack_event("docker-files-hash", d.as_bytes()));
        }
        return Ok(events);
    }
    let mut events = vec![
        tdx::secretvm_native_event("docker-compose.yaml", &compose),
        tdx::secretvm_native_event("rootfs", &rootfs),
    ];
    if let Some(d) = docker_files {
        events.push(tdx::secretvm_native_event("docker-files.tar", &d));
    }
    Ok(events)
}

fn rtmr3(args: Rtmr3Args) -> Result<()> {
    let mut events = match &args.config_dir {
        Some(dir) => config_dir_events(dir, &args)?,
        None => Vec::new(),
    };
    for v in &args.values {
        let digest = Sha256Digest::from_hex("--value", v)?;
        events.push(tdx::secretvm_native_event("value", &digest));
    }
    for f in &args.files {
        let digest = sha256_file(f)?;
        events.push(tdx::secretvm_native_event(&f.display().to_string(), &digest));
    }
    for e in &args.event {
        let Some((name, payload)) = e.split_once('=') else {
            bail!("--event {e:?}: expected NAME=PAYLOAD_HEX");
        };
        let payload = hex::decode(payload).with_context(|| format!("--event {name}: payload"))?;
        events.push(tdx::dstack_event(name, &payload));
    }
    let rtmr3 = tdx::replay(&events)?[3];
    if args.json {
        print_json(serde_json::to_string_pretty(
            &serde_json::json!({ "rtmr3": rtmr3, "events": events }),
        )?)
    } else {
        writeln!(io::stdout().lock(), "{rtmr3}")?;
        Ok(())
    }
}

fn replay(args: ReplayArgs) -> Result<()> {
    let doc: serde_json::Value = serde_json::from_slice(&read(&args.getquote)?)
        .with_context(|| format!("{} is not JSON", args.getquote.display()))?;
    let (Some(quote), Some(event_log)) = (doc["quote"].as_str(), doc["event_log"].as_str()) else {
        bail!("{} has no `quote` and `event_log` strings", args.getquote.display());
    };
    let quote = hex::decode(quote).context("quote")?;
    let q = tdx::quote_measurements(&quote)?;
    let log: Vec<tdx::CcEventLogEntry> =
        serde_json::from_str(event_log).context("event_log is not an event log")?;
    let events = tdx::events_from_log(&log)?;
    let cmp = tdx::compare_with_quote(&events, &q)?;
    if args.json {
        print_json(serde_json::to_string_pretty(
            &serde_json::json!({ "mrtd": q.mrtd, "comparison": cmp, "events": events }),
        )?)?;
    } else {
        let mut out = io::stdout().lock();
        writeln!(out, "mrtd: {} (from the quote)", q.mrtd)?;
        for i in 0..4 {
            let verdict =
                if cmp.matches[i] { "matches the quote" } else { "DIFFERS from the quote" };
            writeln!(out, "rtmr{i}: {} {verdict}", cmp.replayed[i])?;
            if !cmp.matches[i] {
                writeln!(out, "  quote: {}", cmp.quoted[i])?;
            }
        }
    }
    if cmp.matches.iter().all(|m| *m) {
        Ok(())
    } else {
        bail!("the event log does not replay to the quote's RTMRs")
    }
}
