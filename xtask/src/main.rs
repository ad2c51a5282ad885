//! `cargo xtask`: the project's build system.
//!
//! - `cargo xtask test` provisions what the tests need (see [`deps`]) and runs every check:
//!   formatting, clippy, the whole test suite (including the tests that drive real external tools
//!   and boot a Linux kernel under QEMU) and a build of the fuzz targets.
//! - `cargo xtask build` is the main job: it produces the release artifacts (see [`build`]);
//!   `cargo xtask shell` opens the build environment it runs bitbake in.
//! - `cargo xtask bench initramfs|measure|provenance|pack` compares our commands with the peer
//!   tools on the same inputs in one run and prints the ratios (see [`mod@bench`]).
//! - `cargo xtask fuzz` runs every fuzz target for a bounded time (see [`mod@fuzz`]).
//! - `cargo xtask deps` only provisions (or, with `--check`, reports) the test dependencies.
//!
//! Errors end the process with exit code 1 and a one-paragraph message; nothing here panics on
//! a missing tool.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod build;
mod cmd;
mod deps;
mod fuzz;
mod test;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The flags of `cargo xtask`.
#[derive(Parser)]
#[command(name = "cargo xtask", about = "secretvm's build system", disable_help_subcommand = true)]
struct Flags {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the release artifacts into ./artifacts (`secretvm build`).
    Build(build::Args),
    /// Build the release twice, the second time every task from source in build-repro/, and
    /// compare the two (`secretvm compare`); fails if they differ.
    ReproCheck(build::ReproArgs),
    /// A command, or an interactive bash, in the builder's build environment (`secretvm shell
    /// [--machine NAME]... [--offline] [-- COMMAND...]`); exits with the command's status.
    Shell(build::ShellArgs),
    /// Check or update yocto/secretvm.lock (`secretvm lock --check|--update ...`).
    Lock(build::LockArgs),
    /// Install what the tests need, then run formatting, clippy, every test and the fuzz build.
    Test(test::Args),
    /// Install (as root) or list (otherwise) the Debian packages and tools the tests need.
    Deps(deps::Args),
    /// Measure our writers against the peer tools on the same input and print the ratios.
    Bench(bench::Args),
    /// Run every cargo-fuzz target for a bounded time.
    Fuzz(fuzz::Args),
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    let root = project_root();
    let result = match flags.cmd {
        Cmd::Shell(args) => match build::shell(&root, &args) {
            Ok(code) => return ExitCode::from(code),
            Err(err) => Err(err),
        },
        Cmd::Build(args) => build::run(&root, &args),
        Cmd::ReproCheck(args) => build::repro_check(&root, &args),
        Cmd::Lock(args) => build::lock(&root, &args),
        Cmd::Test(args) => test::run(&root, &args),
        Cmd::Deps(args) => deps::run(&root, &args).map(|_| ()),
        Cmd::Bench(args) => bench::run(&root, &args),
        Cmd::Fuzz(args) => fuzz::run(&root, &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's manifest directory.
fn project_root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}
