//! The command line of `secretvm`, as clap derive types: values as close to the flags as
//! possible, with no behaviour (that lives in `main.rs` and the libraries).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Build, measure and verify Secret VM images.
#[derive(Parser)]
#[command(name = "secretvm", version, propagate_version = true, disable_help_subcommand = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Archives and boot images: cpio, initramfs, the root file system ISO, the GCP tarball.
    #[command(subcommand)]
    Pack(Pack),
    /// The qcow2 disk the guest encrypts.
    #[command(subcommand)]
    Qcow2(Qcow2),
    /// Expected TEE launch measurements: OVMF info, SEV-SNP/SEV-ES/SEV, TDX, RTMR3, event-log
    /// replay.
    #[command(subcommand)]
    Measure(crate::measure::Measure),
    /// Verify signed provenance offline, as `gh attestation verify` does.
    #[command(subcommand)]
    Verify(crate::verify::Verify),
    /// Build the release artifacts; with --from-deploy, only the steps after bitbake: collect
    /// the artifacts of an existing build directory, make the ISOs, GCP tarballs and the
    /// encrypted-fs disk, and write sha256sum.txt, digest.txt and manifest.json.
    Build(crate::build::BuildArgs),
    /// Run a command, or an interactive bash, in the build environment: the builder, the
    /// build directory and poky's environment a build's bitbake runs in (after the same
    /// preflight, layer checkouts and regenerated conf/); exit with the command's status.
    Shell(crate::shell::ShellArgs),
    /// Check or update the lock file: layer commits, resolved SRCREVs, the builder image id.
    Lock(crate::lock::LockArgs),
    /// Lay out a complete build for publishing: its released files under upstream's names
    /// (`<stem>-<tag>-<machine><extension>`), each checked against the build's sha256sum.txt,
    /// with sha256sum.txt over them and the build's manifest.json, in a new directory.
    Release(crate::release::ReleaseArgs),
    /// Where two releases (directories with sha256sum.txt) or two artifacts differ: the cpio
    /// entries and their fields, the JSON values, or the blocks of anything else; exit 0 when
    /// identical, 1 when not.
    ///
    /// Listed files are compared by the digests sha256sum.txt gives, so check each release
    /// with `sha256sum -c sha256sum.txt` first; only the files that differ are read.
    Compare(crate::compare::CompareArgs),
}

#[derive(Subcommand)]
pub(crate) enum Pack {
    /// Build a reproducible initramfs (newc cpio, gzip) from a directory or a gen_init_cpio list.
    ///
    /// Entries are sorted, inode numbers assigned in order, hard links kept, modification times
    /// clamped to SOURCE_DATE_EPOCH and the gzip header carries no name and no time: the same
    /// input gives the same bytes on any machine.
    Initramfs(InitramfsArgs),
    /// List a cpio archive (newc or crc, optionally gzip-compressed) like `cpio -tv`.
    CpioList(CpioListArgs),
    /// Build the root file system ISO (ISO 9660 level 3 + Rock Ridge) straight from a newc cpio.
    ///
    /// No extraction and no root needed: the image depends only on the archive's entries and
    /// the flags, not on their order, the machine, the clock or the locale.
    Iso(crate::iso::IsoArgs),
    /// Build the Google Compute Engine import tarball: DISK.raw as `disk.raw` in a tar.gz with
    /// fixed mtime, owner and mode, and a gzip header without name or time.
    GcpTar(crate::iso::GcpTarArgs),
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("input").required(true))]
pub(crate) struct InitramfsArgs {
    /// Archive the tree below this directory (the directory itself is not an entry).
    #[arg(long, value_name = "DIR", group = "input")]
    pub(crate) from_dir: Option<PathBuf>,
    /// Archive what this gen_init_cpio description lists (file, dir, nod, slink, pipe, sock
    /// lines); file locations are relative to the description's directory.
    #[arg(long, value_name = "FILE", group = "input")]
    pub(crate) spec: Option<PathBuf>,
    /// Where to write the archive (written to a temporary file, then renamed).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: PathBuf,
    /// No entry gets a later modification time; spec entries all get this time.
    #[arg(long, env = "SOURCE_DATE_EPOCH", default_value_t = 0, value_name = "SECONDS")]
    pub(crate) source_date_epoch: u32,
    /// Record every entry as owned by 0:0 instead of its owner on disk or in the description.
    #[arg(long)]
    pub(crate) owner_root: bool,
    /// gzip level (1-9).
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u32).range(1..=9))]
    pub(crate) level: u32,
    /// Write a plain cpio archive, without gzip.
    #[arg(long)]
    pub(crate) no_gzip: bool,
}

#[derive(Args)]
pub(crate) struct CpioListArgs {
    /// The archive; gzip compression is detected from its first bytes.
    #[arg(value_name = "ARCHIVE")]
    pub(crate) archive: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

#[derive(Subcommand)]
pub(crate) enum Qcow2 {
    /// Create an empty qcow2 image, byte-identical to `qemu-img create -f qcow2 FILE SIZE`.
    Create(Qcow2CreateArgs),
    /// Read and validate a qcow2 header and print what it says.
    Info(Qcow2InfoArgs),
}

#[derive(Args)]
pub(crate) struct Qcow2CreateArgs {
    /// The image to write (written to a temporary file, then renamed).
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Virtual size, in qemu-img's syntax: bytes, or a number with a k, M, G, T, P or E suffix
    /// (powers of 1024), e.g. 300G.
    #[arg(value_name = "SIZE")]
    pub(crate) size: String,
}

#[derive(Args)]
pub(crate) struct Qcow2InfoArgs {
    /// The image to read.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

/// How to print a result.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Format {
    /// For people.
    Text,
    /// For programs.
    Json,
}
