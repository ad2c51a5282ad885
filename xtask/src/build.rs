//! `cargo xtask build`: the main job, producing the release artifacts in `artifacts/`.
//!
//! It builds the release `secretvm` binary and runs `secretvm build`, passing the git revision
//! of the workspace (`git rev-parse HEAD`, with `-dirty` when tracked files differ from it) for
//! the manifest. With `--from-deploy DIR` only the steps after bitbake run (collection, ISOs,
//! GCP tarballs, the encrypted-fs disk, the manifest); without it `secretvm build` first runs
//! preflight, the layer checkouts, the bitbake configuration, the builder image and bitbake.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

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
    #[command(flatten)]
    common: Common,
}

/// What `cargo xtask build` and `cargo xtask repro-check` pass to `secretvm build` alike.
#[derive(clap::Args)]
pub(crate) struct Common {
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

impl Common {
    /// The flags, in `secretvm build`'s syntax.
    fn flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        for machine in &self.machines {
            out.extend(["--machine".to_owned(), machine.clone()]);
        }
        for artifact in &self.artifacts {
            out.extend(["--artifact".to_owned(), artifact.clone()]);
        }
        if self.online {
            out.push("--online".into());
        }
        for (flag, value) in [("--engine", &self.engine), ("--user", &self.user)] {
            if let Some(value) = value {
                out.extend([flag.to_owned(), value.clone()]);
            }
        }
        out
    }
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
    cmd::run(build.args(args.common.flags()))
}

/// Flags of `cargo xtask repro-check`.
#[derive(clap::Args)]
pub(crate) struct ReproArgs {
    #[command(flatten)]
    common: Common,
}

/// The second build's directory and artifacts, relative to the workspace.
const REPRO_BUILD_DIR: &str = "build-repro";
const REPRO_OUT: &str = "artifacts-repro";

/// `cargo xtask repro-check`: the release built twice and compared. The first build is the
/// usual one (`build/`, `artifacts/`, with whatever sstate the team shares); the second runs
/// every task from source (`secretvm build --from-scratch`) in a fresh `build-repro/` into
/// `artifacts-repro/`; then `secretvm compare` reports every difference and fails if there is
/// one.
pub(crate) fn repro_check(root: &Path, args: &ReproArgs) -> Result<()> {
    let revision = git_revision(root)?;
    let secretvm = release_binary(root)?;
    let flags = args.common.flags();
    let build = |dir: &str, out: &str, scratch: bool| {
        let mut c = cmd::new(&secretvm, root);
        c.args(["build", "--build-dir", dir, "--out"]).arg(root.join(out));
        c.args(["--git-revision", &revision]).args(&flags);
        if scratch {
            c.arg("--from-scratch");
        }
        c
    };
    eprintln!("repro-check: first build, in build/ into artifacts/");
    cmd::run(&mut build("build", "artifacts", false))?;
    let second = root.join(REPRO_BUILD_DIR);
    if second.exists() {
        eprintln!("repro-check: removing the previous check's {REPRO_BUILD_DIR}/");
        std::fs::remove_dir_all(&second)
            .with_context(|| format!("cannot remove {}", second.display()))?;
    }
    eprintln!("repro-check: second build, every task from source, in {REPRO_BUILD_DIR}/");
    cmd::run(&mut build(REPRO_BUILD_DIR, REPRO_OUT, true))?;
    let mut compare = cmd::new(&secretvm, root);
    compare.arg("compare").arg(root.join("artifacts")).arg(root.join(REPRO_OUT));
    cmd::run(&mut compare).context(
        "the two builds differ (above); keep build/ and build-repro/ to look into the tasks",
    )?;
    eprintln!("repro-check: the two builds are identical");
    Ok(())
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

/// Flags of `cargo xtask shell`: passed to `secretvm shell` as they are.
#[derive(clap::Args)]
pub(crate) struct ShellArgs {
    /// `secretvm shell`'s flags, then `--` and the command (see `secretvm shell --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// `cargo xtask shell ...`: builds the release binary and runs `secretvm shell ...` in the
/// workspace root; returns the command's exit code (a signal N as 128 + N).
pub(crate) fn shell(root: &Path, args: &ShellArgs) -> Result<u8> {
    use std::os::unix::process::ExitStatusExt;
    let secretvm = release_binary(root)?;
    let status = cmd::status(cmd::new(&secretvm, root).arg("shell").args(&args.args))?;
    let code = status.code().or(status.signal().map(|s| 128 + s)).unwrap_or(1);
    Ok((code & 0xff) as u8)
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
