//! `secretvm pack iso` and `secretvm pack gcp-tar`: the flags, and the glue to the artifact edge.
//!
//! `SOURCE_DATE_EPOCH` is read here (through clap's `env`), never in the libraries.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use secretvm_pack::{gcp, iso};

/// `secretvm pack iso ROOTFS.cpio -o ROOTFS.iso`.
#[derive(Debug, Args)]
pub(crate) struct IsoArgs {
    /// The root file system as an uncompressed newc cpio archive (a file, read twice: headers,
    /// then data).
    #[arg(value_name = "ROOTFS.cpio")]
    pub(crate) cpio: PathBuf,
    /// Where to write the ISO image (written to a temporary file, then renamed).
    #[arg(short, long, value_name = "ROOTFS.iso")]
    pub(crate) output: PathBuf,
    /// The volume identifier: up to 32 of A-Z, 0-9 and _.
    #[arg(long, default_value = "ISOIMAGE")]
    pub(crate) volume_id: String,
    /// Record every entry as owned by 0:0 (the upstream script's `-uid 0 -gid 0`).
    #[arg(long)]
    pub(crate) owner_root: bool,
    /// Give every entry the time SOURCE_DATE_EPOCH instead of its cpio mtime clamped to it
    /// (the upstream script's `-volume_date all_file_dates`).
    #[arg(long)]
    pub(crate) all_times_epoch: bool,
    /// The volume dates, and the latest time any entry may show.
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub(crate) source_date_epoch: u64,
    /// Accept name components of 254 and 255 bytes, which Linux reads back truncated.
    #[arg(long)]
    pub(crate) allow_long_names: bool,
    /// Match xorriso 1.5.4's `-as mkisofs` output: directory link count 1, preparer
    /// `XORRISO`, 300 KiB of trailing zeros.
    #[arg(long)]
    pub(crate) xorriso_compat: bool,
}

/// `secretvm pack gcp-tar DISK.raw -o OUT.tar.gz`.
#[derive(Debug, Args)]
pub(crate) struct GcpTarArgs {
    /// The raw disk image.
    #[arg(value_name = "DISK.raw")]
    pub(crate) disk: PathBuf,
    /// Where to write the tarball (written to a temporary file, then renamed).
    #[arg(short, long, value_name = "OUT.tar.gz")]
    pub(crate) output: PathBuf,
    /// The modification time of `disk.raw` in the archive.
    #[arg(long, env = "SOURCE_DATE_EPOCH", default_value_t = 0, value_name = "SECONDS")]
    pub(crate) source_date_epoch: u64,
    /// gzip level (1-9).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub(crate) level: u32,
    /// Store the whole disk, zeros included, instead of an old-GNU sparse member whose holes
    /// are the all-zero 512-byte blocks.
    #[arg(long)]
    pub(crate) no_sparse: bool,
}

impl IsoArgs {
    /// The library options these flags stand for.
    pub(crate) fn options(&self) -> iso::Options {
        let mut options = iso::Options {
            epoch: self.source_date_epoch,
            all_times_epoch: self.all_times_epoch,
            owner_root: self.owner_root,
            volume_id: self.volume_id.clone(),
            allow_long_names: self.allow_long_names,
            ..iso::Options::default()
        };
        if self.xorriso_compat {
            options.directory_nlink_one = true;
            options.preparer_id = "XORRISO".to_owned();
            options.pad_blocks = 150;
        }
        options
    }
}

/// Runs `secretvm pack iso`.
#[allow(clippy::print_stderr)]
pub(crate) fn run_iso(args: &IsoArgs) -> Result<()> {
    let mut bar = Progress::new(&args.output);
    let result = secretvm_artifact::iso::write_iso(
        &args.cpio,
        &args.options(),
        &args.output,
        &mut |done, total| bar.update(done, total),
    );
    bar.finish();
    let summary = result.with_context(|| format!("cannot make {}", args.output.display()))?;

    eprintln!(
        "wrote {} ({} entries, {} bytes of file data, {} bytes)",
        args.output.display(),
        summary.entries,
        summary.data_len,
        summary.image_len
    );
    Ok(())
}

/// Runs `secretvm pack gcp-tar`.
#[allow(clippy::print_stderr)]
pub(crate) fn run_gcp_tar(args: &GcpTarArgs) -> Result<()> {
    let options = gcp::Options {
        mtime: args.source_date_epoch,
        gzip_level: args.level,
        sparse: !args.no_sparse,
        ..gcp::Options::default()
    };
    let len = secretvm_artifact::iso::write_gcp_tar(&args.disk, &options, &args.output)
        .with_context(|| format!("cannot make {}", args.output.display()))?;
    eprintln!("wrote {} (disk.raw, {len} bytes)", args.output.display());
    Ok(())
}

/// A one-line progress bar on stderr, shown only on a terminal and for images of 64 MiB or more.
struct Progress {
    label: String,
    shown: Option<u64>,
    enabled: bool,
}

impl Progress {
    fn new(output: &Path) -> Progress {
        Progress {
            label: output.display().to_string(),
            shown: None,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// Redraws the bar when the percentage changes.
    #[allow(clippy::print_stderr)]
    fn update(&mut self, done: u64, total: u64) {
        if !self.enabled || total < 64 << 20 {
            return;
        }
        let percent = done.saturating_mul(100) / total.max(1);
        if self.shown == Some(percent) {
            return;
        }
        self.shown = Some(percent);
        let filled = usize::try_from(percent / 4).unwrap_or(25);
        eprint!(
            "\rwriting {} [{:<25}] {percent:>3}% ({} of {} MiB)",
            self.label,
            "#".repeat(filled),
            done >> 20,
            total >> 20
        );
        let _ = std::io::stderr().flush();
    }

    /// Ends the bar's line, if one was drawn.
    #[allow(clippy::print_stderr)]
    fn finish(&mut self) {
        if self.shown.is_some() {
            eprintln!();
        }
    }
}
