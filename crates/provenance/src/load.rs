//! Loading bundles (`.json`: one bundle; `.jsonl`: one per line) and trusted roots (one JSON
//! root, or `trusted_root.jsonl` with one root per line as `gh attestation trusted-root` writes
//! it).

use crate::backend::{self, ParsedBundle, ParsedRoot};
use crate::error::{Error, Result};
use crate::json;

/// The largest bundle file accepted, in bytes.
pub const MAX_BUNDLE_FILE_BYTES: usize = 64 << 20;
/// The most bundles one file may hold.
pub const MAX_BUNDLES: usize = 4096;
/// The largest trusted-root file accepted, in bytes.
pub const MAX_ROOT_FILE_BYTES: usize = 16 << 20;
/// The most trusted roots one file may hold.
pub const MAX_ROOTS: usize = 64;

/// How a bundle file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleFormat {
    /// Exactly one bundle (gh: a `--bundle` file not ending in `.jsonl`).
    Json,
    /// One bundle per line (gh: a `--bundle` file ending in `.jsonl`); at least one.
    Jsonl,
}

impl BundleFormat {
    /// The format gh infers from a file name: `.jsonl` is JSON Lines, anything else one bundle.
    pub fn from_file_name(name: &str) -> Self {
        if name.ends_with(".jsonl") { BundleFormat::Jsonl } else { BundleFormat::Json }
    }
}

/// A parsed Sigstore bundle, not yet verified.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub(crate) parsed: ParsedBundle,
}

impl Bundle {
    /// The bundle's media type.
    pub fn media_type(&self) -> &'static str {
        self.parsed.media_type()
    }
}

/// Parses a bundle file.
///
/// Media types v0.1 to v0.3 parse; whether v0.1 is accepted is decided at verification time
/// ([`crate::Policy::min_bundle_minor`]).
pub fn parse_bundles(bytes: &[u8], format: BundleFormat) -> Result<Vec<Bundle>> {
    let docs = json::documents(bytes, MAX_BUNDLE_FILE_BYTES, MAX_BUNDLES)
        .map_err(|detail| Error::BundleFormat { detail: format!("bundle file: {detail}") })?;
    if format == BundleFormat::Json && docs.len() != 1 {
        return Err(Error::BundleFormat {
            detail: format!(
                "a .json bundle file holds one bundle, this one holds {}; use .jsonl for several",
                docs.len()
            ),
        });
    }
    let count = docs.len();
    docs.into_iter()
        .enumerate()
        .map(|(index, doc)| {
            backend::parse_bundle(doc)
                .map(|parsed| Bundle { parsed })
                .map_err(|e| in_bundle(e, index, count))
        })
        .collect()
}

/// Wraps an error with the bundle's position when the file holds several.
pub(crate) fn in_bundle(e: Error, index: usize, count: usize) -> Error {
    if count == 1 { e } else { Error::InBundle { index, count, source: Box::new(e) } }
}

/// The trusted roots from one file, in file order.
#[derive(Clone, Debug)]
pub struct TrustedRoots {
    pub(crate) roots: Vec<ParsedRoot>,
}

impl TrustedRoots {
    /// How many roots the file held.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Always false: parsing rejects a file without a root.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }
}

/// Parses a trusted-root file: one root as JSON (compact or pretty), or several as JSON Lines.
///
/// gh reads `--custom-trusted-root` line by line; this also accepts a pretty-printed root and a
/// last line without a newline, which gh (at the version the docs describe) rejects or skips.
pub fn parse_trusted_roots(bytes: &[u8]) -> Result<TrustedRoots> {
    let docs = json::documents(bytes, MAX_ROOT_FILE_BYTES, MAX_ROOTS)
        .map_err(|detail| Error::TrustedRoot { detail: format!("trusted root file: {detail}") })?;
    let roots = docs
        .into_iter()
        .enumerate()
        .map(|(i, doc)| {
            backend::parse_root(doc).map_err(|e| Error::TrustedRoot {
                detail: format!("root {} of the file: {e}", i + 1),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TrustedRoots { roots })
}
