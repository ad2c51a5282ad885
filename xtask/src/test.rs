//! `cargo xtask test`: the README's test command and the only thing `.ci/run` calls.
//!
//! It provisions the tools (see [`crate::deps`]), then runs, in order and stopping at the first
//! failure: `cargo fmt --check`, `cargo clippy -D warnings`, `cargo doc` with warnings denied,
//! the whole test suite with the tool
//! paths in the environment, and `cargo check` of the fuzz targets. The in-guest package
//! `secretvm-guest` (meta-secret, outside the workspace: its recipe builds it on its own) gets
//! the same fmt, clippy and test steps. With `CI=true` in the
//! environment, the tests that need a tool fail instead of skipping when it is missing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{cmd, deps};

/// Flags of `cargo xtask test`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Do not install anything; fail if something is missing.
    #[arg(long)]
    no_install: bool,
    /// Skip fmt, clippy and the fuzz build; run only the tests.
    #[arg(long)]
    quick: bool,
    /// Extra arguments for `cargo test` (e.g. a test name filter), after `--`.
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

pub(crate) fn run(root: &Path, args: &Args) -> Result<()> {
    let tools = deps::ensure(root, !args.no_install).context("cannot provide the test tools")?;
    if !args.quick {
        cmd::run(cmd::new("cargo", root).args(["fmt", "--all", "--", "--check"]))
            .context("the code is not formatted: run `cargo fmt --all`")?;
        cmd::run(cmd::new("cargo", root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    if !args.quick {
        cmd::run(
            cmd::new("cargo", root)
                .args(["doc", "--workspace", "--no-deps", "--locked", "--quiet"])
                .env("RUSTDOCFLAGS", "-D warnings"),
        )
        .context("the API docs have broken links or other rustdoc warnings")?;
    }
    let mut test = cmd::new("cargo", root);
    test.args(["test", "--workspace", "--locked"]).args(&args.cargo_args);
    for (key, value) in &tools.env {
        test.env(key, value);
    }
    let (passed, failed) = cmd::run_counting_tests(&mut test)?;
    let guest = guest_manifest(root);
    if !args.quick {
        cmd::run(cmd::new("cargo", root).args(["fmt", "--check", "--manifest-path"]).arg(&guest))
            .context("secretvm-guest is not formatted: run `cargo fmt --manifest-path` on it")?;
        cmd::run(
            cmd::new("cargo", root)
                .args(["clippy", "--all-targets", "--locked", "--manifest-path"])
                .arg(&guest)
                .arg("--target-dir")
                .arg(root.join(GUEST_TARGET))
                .args(["--", "-D", "warnings"]),
        )?;
    }
    let (guest_passed, guest_failed) = cmd::run_counting_tests(
        cmd::new("cargo", root)
            .args(["test", "--locked", "--manifest-path"])
            .arg(&guest)
            .arg("--target-dir")
            .arg(root.join(GUEST_TARGET)),
    )?;
    let (passed, failed) = (passed + guest_passed, failed + guest_failed);
    if !args.quick {
        cmd::run(
            cmd::new("cargo", root)
                .args(["check", "--quiet", "--manifest-path"])
                .arg(root.join("fuzz/Cargo.toml")),
        )
        .context("the fuzz targets do not build")?;
    }
    // The total over every test binary, as one plain line for whoever reads the log's end.
    println!("cargo xtask test: all checks passed");
    println!("total: {passed} passed, {failed} failed");
    Ok(())
}

/// Where the in-guest package is built, apart from the workspace's own target directory.
pub(crate) const GUEST_TARGET: &str = "target/guest";

/// The manifest of the in-guest package, which is not a workspace member.
pub(crate) fn guest_manifest(root: &Path) -> PathBuf {
    root.join("meta-secret/recipes-core/secretvm-guest/files/secretvm-guest/Cargo.toml")
}
