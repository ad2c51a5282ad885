//! `cargo xtask build`: the main job, producing the release artifacts in `artifacts/`.
//!
//! The Yocto image build (kernel, initramfs, firmware, root file systems) is not implemented yet;
//! it is tracked by the Yocto issue. Until then this runs the steps that exist and says plainly
//! which artifacts it could not produce.

use std::path::Path;

use anyhow::{Context, Result};

use crate::cmd;

/// Flags of `cargo xtask build`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the artifacts go.
    #[arg(long, default_value = "artifacts")]
    out: std::path::PathBuf,
}

/// The artifacts of a release that need the Yocto build, which does not exist yet.
const NOT_YET: &[&str] = &[
    "<machine>/bzImage",
    "<machine>/initramfs.cpio.gz",
    "<machine>/ovmf.fd",
    "<machine>/rootfs-{dev,prod,gpu-dev,gpu-prod}.{cpio,iso}",
    "gcp-tdx/rootfs-{dev,prod}.wic.tar.gz",
    "sha256sum.txt, digest.txt, manifest.json",
];

pub(crate) fn run(root: &Path, args: &Args) -> Result<()> {
    let out = root.join(&args.out);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let secretvm = crate::build::release_binary(root)?;
    let qcow2 = out.join("encryptedfs.qcow2");
    cmd::run(cmd::new(&secretvm, root).args(["qcow2", "create"]).arg(&qcow2).arg("300G"))?;
    eprintln!();
    eprintln!("built: {} (empty 300G encrypted-fs disk)", qcow2.display());
    eprintln!(
        "NOT built: the Yocto image build is not implemented yet (see the Yocto issue), so these \
         release artifacts are missing:"
    );
    for name in NOT_YET {
        eprintln!("  - {name}");
    }
    Ok(())
}

/// Builds the `secretvm` binary with the release profile and returns its path.
pub(crate) fn release_binary(root: &Path) -> Result<std::path::PathBuf> {
    cmd::run(cmd::new("cargo", root).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "secretvm-cli",
    ]))?;
    Ok(root.join("target/release/secretvm"))
}
