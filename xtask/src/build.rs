//! `cargo xtask build`: the main job, producing the release artifacts in `artifacts/`.
//!
//! It builds the release `secretvm` binary and runs `secretvm build`, passing the git revision
//! of the workspace (`git rev-parse HEAD`, with `-dirty` when tracked files differ from it) for
//! the manifest. With `--from-deploy DIR` only the steps after bitbake run (collection, ISOs,
//! GCP tarballs, the encrypted-fs disk, the manifest); without it `secretvm build` first runs
//! preflight, the layer checkouts, the bitbake configuration, the builder image and bitbake.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cmd;

/// Flags of `cargo xtask build`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Where the artifacts go.
    #[arg(long, default_value = "artifacts")]
    out: PathBuf,
    /// Skip bitbake: collect from this existing bitbake build directory (the one holding
    /// `tmp-<machine>-glibc/`).
    #[arg(long, value_name = "BUILD_DIR")]
    from_deploy: Option<PathBuf>,
    /// Only this machine (repeatable; all machines by default), as upstream's MACHINES did.
    #[arg(long = "machine", value_name = "NAME")]
    machines: Vec<String>,
    /// Only this artifact, such as `bzImage` (repeatable; all by default): only the bitbake
    /// targets it needs are built.
    #[arg(long = "artifact", value_name = "NAME")]
    artifacts: Vec<String>,
    /// Where bitbake runs: auto, docker, podman or native [default: the config's].
    #[arg(long, value_name = "ENGINE")]
    engine: Option<String>,
    /// The build user inside the container, UID:GID (needed when running as root).
    #[arg(long, value_name = "UID:GID")]
    user: Option<String>,
    /// Run bitbake once with the network, instead of fetching first and building without
    /// network (see `secretvm build --help`).
    #[arg(long)]
    online: bool,
}

pub(crate) fn run(root: &Path, args: &Args) -> Result<()> {
    let revision = git_revision(root)?;
    let secretvm = release_binary(root)?;
    let mut build = cmd::new(&secretvm, root);
    build.arg("build").arg("--out").arg(root.join(&args.out)).args(["--git-revision", &revision]);
    if let Some(dir) = &args.from_deploy {
        // Relative to where the user typed the command, not to the workspace root.
        build.arg("--from-deploy").arg(std::path::absolute(dir)?);
    }
    for machine in &args.machines {
        build.args(["--machine", machine]);
    }
    for artifact in &args.artifacts {
        build.args(["--artifact", artifact]);
    }
    if args.online {
        build.arg("--online");
    }
    for (flag, value) in [("--engine", &args.engine), ("--user", &args.user)] {
        if let Some(value) = value {
            build.args([flag, value]);
        }
    }
    cmd::run(&mut build)
}

/// Flags of `cargo xtask lock`: passed to `secretvm lock` as they are.
#[derive(clap::Args)]
pub(crate) struct LockArgs {
    /// `--check` or `--update`, then `secretvm lock`'s other flags (see `secretvm lock --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    args: Vec<String>,
}

/// `cargo xtask lock ...`: builds the release binary and runs `secretvm lock ...` in the
/// workspace root.
pub(crate) fn lock(root: &Path, args: &LockArgs) -> Result<()> {
    let secretvm = release_binary(root)?;
    cmd::run(cmd::new(&secretvm, root).arg("lock").args(&args.args))
}

/// `git rev-parse HEAD`, with `-dirty` appended when tracked files differ from that commit.
fn git_revision(root: &Path) -> Result<String> {
    let head = cmd::output(cmd::new("git", root).args(["rev-parse", "HEAD"]))?;
    let status =
        cmd::output(cmd::new("git", root).args(["status", "--porcelain", "--untracked-files=no"]))?;
    let dirty = if status.trim().is_empty() { "" } else { "-dirty" };
    Ok(format!("{}{dirty}", head.trim()))
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
