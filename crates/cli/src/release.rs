//! `secretvm release --tag TAG [ARTIFACTS]`: a complete build's published files under
//! upstream's release names (`rootfs-prod-<tag>-tdx.iso`, ...), with `sha256sum.txt` over
//! them and the build's `manifest.json`, in one new directory for the release workflow to
//! attest and upload (see `secretvm_yocto::release`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use secretvm_yocto::release;

/// `secretvm release`.
#[derive(Debug, Args)]
pub(crate) struct ReleaseArgs {
    /// What `secretvm build` wrote (holding manifest.json and sha256sum.txt).
    #[arg(value_name = "ARTIFACTS", default_value = "artifacts")]
    pub(crate) artifacts: PathBuf,
    /// The release tag, part of every file name (such as v1.2.3).
    #[arg(long, value_name = "TAG")]
    pub(crate) tag: String,
    /// The build config the artifacts were built from.
    #[arg(long, value_name = "FILE", default_value = "yocto/secretvm.toml")]
    pub(crate) config: PathBuf,
    /// The new directory the release goes into.
    #[arg(long, value_name = "DIR", default_value = "release")]
    pub(crate) out: PathBuf,
}

/// Runs `secretvm release`.
#[allow(clippy::print_stdout)]
pub(crate) fn run(args: &ReleaseArgs) -> Result<()> {
    let (config, _) = crate::build::read_config(&args.config)?;
    let files = release::write_release(&config, &args.artifacts, &args.tag, &args.out)
        .with_context(|| format!("cannot release {} as {}", args.artifacts.display(), args.tag))?;
    let bytes: u64 = files.iter().map(|f| f.len).sum();
    println!(
        "released {} files ({bytes} bytes) of {} as {} into {}",
        files.len(),
        args.artifacts.display(),
        args.tag,
        args.out.display()
    );
    Ok(())
}
