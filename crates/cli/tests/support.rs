//! Helpers for running the binary under test; tools and vectors come from `secretvm_testkit`.

use std::process::{Command, Output};

pub(crate) use secretvm_testkit::{tool_from_env, tool_on_path, vectors};

/// The `secretvm` binary under test.
pub(crate) fn secretvm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_secretvm"))
}

/// Runs `cmd`, asserting success; returns its output.
pub(crate) fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `secretvm pack initramfs --no-gzip --from-dir tree -o out`: a plain newc cpio of `tree`.
pub(crate) fn pack_cpio(tree: &std::path::Path, out: &std::path::Path) {
    run_ok(
        secretvm()
            .args(["pack", "initramfs", "--no-gzip", "--from-dir"])
            .arg(tree)
            .arg("-o")
            .arg(out),
    );
}

/// Runs `cmd`, asserting failure; returns its stderr.
pub(crate) fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(!out.status.success(), "{cmd:?} succeeded but should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether the tests run as root (as in CI), from `id -u`.
pub(crate) fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}
