//! The identity a verified leaf certificate states: its SAN and the Fulcio extensions gh's
//! policy reads.

use serde::Serialize;

/// The identity claims of a verified Fulcio leaf certificate.
///
/// These are claims made by the CA on behalf of the CI system; they are worth something only
/// inside a [`crate::Verified`], that is after the chain, the signature and the policy passed.
/// Extension numbers are under `1.3.6.1.4.1.57264.1` (Fulcio's `docs/oid-info.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CertificateIdentity {
    /// The subject alternative name: for GitHub Actions, the signer workflow URI with its ref
    /// (the same value as the Build Signer URI).
    pub san: Option<String>,
    /// The OIDC issuer (`.8`, falling back to `.1`).
    pub issuer: Option<String>,
    /// Build Signer URI (`.9`).
    pub build_signer_uri: Option<String>,
    /// Build Signer Digest (`.10`).
    pub build_signer_digest: Option<String>,
    /// Runner Environment (`.11`): `github-hosted` or `self-hosted`.
    pub runner_environment: Option<String>,
    /// Source Repository URI (`.12`).
    pub source_repository_uri: Option<String>,
    /// Source Repository Digest (`.13`).
    pub source_repository_digest: Option<String>,
    /// Source Repository Ref (`.14`).
    pub source_repository_ref: Option<String>,
    /// Source Repository Owner URI (`.16`).
    pub source_repository_owner_uri: Option<String>,
    /// Build Config URI (`.18`): the calling workflow, which differs from the SAN for reusable
    /// workflows.
    pub build_config_uri: Option<String>,
    /// Run Invocation URI (`.21`).
    pub run_invocation_uri: Option<String>,
}
