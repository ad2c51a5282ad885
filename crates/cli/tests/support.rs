//! Shared helpers: locating the binary, the vectors and the external tools, and running them.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `$SECRETVM_VECTORS`, by default `../shared/vectors` beside the workspace.
pub(crate) fn vectors() -> Option<PathBuf> {
    let dir = env::var_os("SECRETVM_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/vectors"));
    if dir.is_dir() {
        Some(dir)
    } else {
        missing(&format!("the test vectors are not at {} (set SECRETVM_VECTORS)", dir.display()));
        None
    }
}

/// Fails the test under CI, where every tool must be present; skips it (with a reason) elsewhere.
pub(crate) fn missing(why: &str) {
    if env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {why}");
    }
    eprintln!("SKIPPED: {why}; `cargo xtask test` provides everything");
}

/// A tool whose path `cargo xtask test` passes in the environment variable `var`.
pub(crate) fn tool_from_env(var: &str) -> Option<PathBuf> {
    match env::var_os(var).map(PathBuf::from) {
        Some(path) if path.exists() => Some(path),
        Some(path) => {
            missing(&format!("{var}={} does not exist", path.display()));
            None
        }
        None => {
            missing(&format!("{var} is not set"));
            None
        }
    }
}

/// A tool found on `PATH`.
pub(crate) fn tool_on_path(name: &str) -> Option<PathBuf> {
    let found = env::var_os("PATH")
        .and_then(|p| env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()));
    if found.is_none() {
        missing(&format!("`{name}` is not on PATH"));
    }
    found
}

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

/// Runs `cmd`, asserting failure; returns its stderr.
pub(crate) fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(!out.status.success(), "{cmd:?} succeeded but should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
