//! Offline verification of GitHub build-provenance attestations: Sigstore bundles made by
//! `actions/attest-build-provenance`, checked the way `gh attestation verify` checks them.
//!
//! - [`parse_bundles`] reads a bundle file (`.json`: one bundle, `.jsonl`: one per line) and
//!   [`parse_trusted_roots`] a trusted-root file (one root, or `trusted_root.jsonl` as
//!   `gh attestation trusted-root` writes it).
//! - [`verify`] checks every bundle against the roots, an [`ArtifactDigest`] and a [`Policy`]
//!   built from gh's flags, and returns what was verified: the [`Instance`], the certificate's
//!   [`CertificateIdentity`], the verified signing times, the in-toto statement and the list of
//!   [`Check`]s that ran. A failure is an [`Error`] whose [`Error::check`] names the check.
//!
//! Checks, in order: bundle format; media type v0.2 or later (gh refuses v0.1; see
//! [`Policy::min_bundle_minor`]); root selection by the leaf issuer's organisation (gh's rule);
//! the instance's thresholds ([`Instance`]); verified signing times (RFC 3161 and SET-backed
//! integrated times, never the wall clock); the chain to a Fulcio CA at every such time; the SCT
//! (public good); every transparency-log entry (inclusion proof against the signed checkpoint,
//! SET) when the instance requires the log; the DSSE signature over PAE; every log entry's body
//! against the bundle; the statement, its predicate type and the subject digest (any subject);
//! then the identity policy ([`Policy`]).
//!
//! The cryptography is `sigstore-verify`, reached only through the private `backend` module.
//! This crate never touches the file system, never spawns processes, never prints and never
//! uses the network: callers hand it bytes and get values back.
//!
//! ```no_run
//! use secretvm_provenance::{BundleFormat, Policy, Signer, parse_bundles, parse_trusted_roots, verify};
//!
//! # fn example(bundle_bytes: &[u8], root_bytes: &[u8]) -> Result<(), secretvm_provenance::Error> {
//! let bundles = parse_bundles(bundle_bytes, BundleFormat::Json)?;
//! let roots = parse_trusted_roots(root_bytes)?;
//! let mut policy = Policy::for_repo("acme/app");
//! policy.signer = Signer::SignerWorkflow("github.com/acme/app/.github/workflows/release.yml".into());
//! let digest = "sha256:49a3aa6075e0f49f82843e74b5baa614ad2a588e6675612bf108a0a008c5ac25".parse()?;
//! let verified = verify(&bundles, &roots, &digest, &policy)?;
//! assert_eq!(verified[0].predicate_type, "https://slsa.dev/provenance/v1");
//! # Ok(())
//! # }
//! ```
//!
//! [`check_parse`] runs every parser of untrusted input over some bytes; it is the body of the
//! `provenance_parse` fuzz target.
//!
//! Unit tests sit next to the code; `tests.rs` runs every case of the shared provenance vectors
//! and checks the verdict and the failing check, and `tests/mutation.rs` corrupts each
//! security-relevant field of every verifying vector and requires a rejection.

mod backend;
mod digest;
mod error;
mod fuzz;
mod identity;
mod json;
mod load;
mod policy;
mod statement;
mod verify;

#[cfg(test)]
mod tests;

pub use digest::{ArtifactDigest, DigestAlgorithm};
pub use error::{Check, Error, Result};
pub use fuzz::check_parse;
pub use identity::CertificateIdentity;
pub use load::{
    Bundle, BundleFormat, MAX_BUNDLE_FILE_BYTES, MAX_BUNDLES, MAX_ROOT_FILE_BYTES, MAX_ROOTS,
    TrustedRoots, parse_bundles, parse_trusted_roots,
};
pub use policy::{GITHUB_ACTIONS_ISSUER, Policy, SLSA_PROVENANCE_V1, Signer, Source};
pub use statement::MAX_SUBJECTS;
pub use verify::{Instance, Verified, verify, verify_bundle};
