//! Test support shared by the secretvm crates; a dev-dependency only.
//!
//! One rule for everything a test needs from outside the repository (the shared test vectors,
//! an external tool): when it is missing, a test under `CI=true` fails, and elsewhere it prints
//! `SKIPPED: <why>` and returns early.

#![allow(clippy::print_stderr)]

use std::env;
use std::path::{Path, PathBuf};

/// Whether the tests run in CI, where nothing may be skipped.
pub fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| v == "true")
}

/// Fails the calling test under CI; elsewhere prints why it is skipped. The caller returns.
pub fn skip(why: &str) {
    assert!(!in_ci(), "CI=true, so this test may not be skipped: {why}");
    eprintln!("SKIPPED: {why}; `cargo xtask test` provides everything");
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared test vectors: `$SECRETVM_VECTORS`, by default `../shared/vectors` beside the
/// workspace. `None` (after [`skip`]) when the directory is missing.
pub fn vectors() -> Option<PathBuf> {
    let dir = env::var_os("SECRETVM_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/vectors"));
    if dir.is_dir() {
        Some(dir)
    } else {
        skip(&format!("the test vectors are not at {} (set SECRETVM_VECTORS)", dir.display()));
        None
    }
}

/// The bytes of a vector file, by its path below [`vectors`].
pub fn vector(name: &str) -> Option<Vec<u8>> {
    let path = vectors()?.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(err) => {
            skip(&format!("cannot read the test vector {}: {err}", path.display()));
            None
        }
    }
}

/// A tool found on `PATH`, or `None` after [`skip`].
pub fn tool_on_path(name: &str) -> Option<PathBuf> {
    let found = env::var_os("PATH")
        .and_then(|p| env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()));
    if found.is_none() {
        skip(&format!("`{name}` is not on PATH"));
    }
    found
}

/// A tool whose path `cargo xtask test` passes in the environment variable `var`, or `None`
/// after [`skip`].
pub fn tool_from_env(var: &str) -> Option<PathBuf> {
    match env::var_os(var).map(PathBuf::from) {
        Some(path) if path.exists() => Some(path),
        Some(path) => {
            skip(&format!("{var}={} does not exist", path.display()));
            None
        }
        None => {
            skip(&format!("{var} is not set"));
            None
        }
    }
}
