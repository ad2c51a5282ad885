//! Test helpers: the shared test vectors, the `CI` switch and SHA-256 in hex.

use std::path::PathBuf;

/// Whether missing tools or vectors must fail the tests (`CI=true`) rather than skip them.
pub(crate) fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Fails under `CI=true`, otherwise prints why a test is skipped.
#[allow(clippy::print_stderr)]
pub(crate) fn skip(reason: &str) {
    assert!(!ci(), "CI=true, so this cannot be skipped: {reason}");
    eprintln!("skipped: {reason}");
}

/// The directory of the shared test vectors: `$SECRETVM_VECTORS`, or `shared/vectors` next to
/// the workspace.
pub(crate) fn vectors_dir() -> PathBuf {
    match std::env::var_os("SECRETVM_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
    }
}

/// Reads a vector file relative to [`vectors_dir`], or calls [`skip`] and returns `None`.
pub(crate) fn vector(name: &str) -> Option<Vec<u8>> {
    let path = vectors_dir().join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(err) => {
            skip(&format!("cannot read test vector {}: {err}", path.display()));
            None
        }
    }
}

/// The SHA-256 digest of `data`, as lowercase hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
