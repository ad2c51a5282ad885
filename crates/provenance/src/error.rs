//! The error type of the crate: which check failed, and the values it compared.
//!
//! Every failure maps to one [`Check`], so a caller (and the vector tests) can tell a bad
//! signature from a policy mismatch without matching on message text.

use std::fmt;

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// The checks a verification runs, in the order it runs them.
///
/// [`Error::check`] names the one that failed; [`crate::Verified::checks`] lists the ones that
/// passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Check {
    /// The bundle file parses as JSON (or JSON Lines) into Sigstore bundles, within the size
    /// limits.
    BundleFormat,
    /// The bundle media type is one this verifier accepts (v0.2 or later by default, as gh).
    BundleVersion,
    /// The trusted root file parses and is usable.
    TrustedRoot,
    /// A trusted root whose CA organisation equals the leaf issuer's organisation exists.
    RootSelection,
    /// RFC 3161 timestamps verify against the root's timestamp authorities, and the instance's
    /// threshold of verified timestamps is met.
    Timestamp,
    /// The leaf chains to a Fulcio CA of the root, valid at every verified signing time, with the
    /// code-signing usage.
    CertificateChain,
    /// The leaf's signed certificate timestamp verifies against a CT log of the root.
    Sct,
    /// Transparency-log entries: inclusion proof against a signed checkpoint, signed entry
    /// timestamp, integrated time within the leaf's validity, and the instance's threshold.
    TransparencyLog,
    /// The DSSE signature (over PAE) verifies with the leaf key.
    Signature,
    /// Each log entry's body describes this bundle's envelope, signature and key.
    LogEntryConsistency,
    /// The signed payload is an in-toto statement.
    Statement,
    /// The artifact digest equals the digest of one of the statement's subjects.
    SubjectDigest,
    /// The statement's predicate type is the expected one.
    PredicateType,
    /// The certificate's OIDC issuer is the expected one.
    Issuer,
    /// The certificate's SAN (the signer workflow) matches the identity policy.
    SignerIdentity,
    /// The Source Repository Owner URI extension names the expected owner.
    SourceRepositoryOwner,
    /// The Source Repository URI extension names the expected repository.
    SourceRepository,
    /// The Source Repository Ref extension is the expected ref.
    SourceRef,
    /// The Source Repository Digest extension is the expected commit.
    SourceDigest,
    /// The Build Signer Digest extension is the expected commit.
    SignerDigest,
    /// The Runner Environment extension is `github-hosted`.
    RunnerEnvironment,
    /// The policy itself is invalid (a bad regular expression, a missing owner).
    Policy,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Check::BundleFormat => "bundle format",
            Check::BundleVersion => "bundle version",
            Check::TrustedRoot => "trusted root",
            Check::RootSelection => "trusted root selection",
            Check::Timestamp => "timestamps",
            Check::CertificateChain => "certificate chain",
            Check::Sct => "signed certificate timestamp",
            Check::TransparencyLog => "transparency log",
            Check::Signature => "signature",
            Check::LogEntryConsistency => "log entry consistency",
            Check::Statement => "in-toto statement",
            Check::SubjectDigest => "subject digest",
            Check::PredicateType => "predicate type",
            Check::Issuer => "OIDC issuer",
            Check::SignerIdentity => "signer identity (SAN)",
            Check::SourceRepositoryOwner => "source repository owner",
            Check::SourceRepository => "source repository",
            Check::SourceRef => "source ref",
            Check::SourceDigest => "source digest",
            Check::SignerDigest => "signer digest",
            Check::RunnerEnvironment => "runner environment",
            Check::Policy => "policy",
        };
        f.write_str(name)
    }
}

/// Everything that can make loading or verification fail.
///
/// Each variant names the check that failed (see [`Error::check`]) and carries the values it
/// compared. Nothing here is a warning: every error means "not verified".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A bundle file or one of its lines is not a Sigstore bundle this verifier can read.
    #[error("bundle format: {detail}")]
    BundleFormat {
        /// What is wrong.
        detail: String,
    },

    /// The bundle's media type is older than the minimum (gh refuses bundles older than v0.2).
    #[error(
        "bundle version: media type {media_type} is older than the minimum v0.{min_minor}; gh refuses such bundles (\"unsupported bundle version\"); allow it explicitly to verify anyway"
    )]
    BundleVersion {
        /// The bundle's media type.
        media_type: String,
        /// The minimum accepted minor version.
        min_minor: u8,
    },

    /// The trusted root file cannot be used.
    #[error("trusted root: {detail}")]
    TrustedRoot {
        /// What is wrong.
        detail: String,
    },

    /// No trusted root has a CA whose issuer organisation equals the leaf issuer's organisation.
    #[error(
        "trusted root selection: the leaf certificate's issuer organisation is {leaf_org:?}, but the trusted roots' CA organisations are {root_orgs:?}"
    )]
    NoRootForIssuer {
        /// The leaf issuer's `O=`.
        leaf_org: String,
        /// The `O=` of the lowest certificate of each CA in the given roots.
        root_orgs: Vec<String>,
    },

    /// The leaf certificate's issuer does not have exactly one organisation (`O=`), so no root
    /// can be chosen for it (gh requires exactly one).
    #[error(
        "trusted root selection: the leaf certificate's issuer has organisations {orgs:?}, expected exactly one"
    )]
    LeafIssuerOrganisation {
        /// The `O=` values found.
        orgs: Vec<String>,
    },

    /// A cryptographic check failed in the Sigstore core.
    #[error("{check}: {detail}")]
    Crypto {
        /// The check that failed.
        check: Check,
        /// What the core reported.
        detail: String,
    },

    /// A threshold of the instance's profile is not met (for example no RFC 3161 timestamp on a
    /// GitHub-instance bundle, or no transparency-log entry on a public-good bundle).
    #[error(
        "{check}: the {instance} instance requires at least {required} {what}, the bundle has {found}"
    )]
    Threshold {
        /// The check whose threshold is not met.
        check: Check,
        /// The instance the profile belongs to.
        instance: String,
        /// What is counted.
        what: &'static str,
        /// How many are required.
        required: usize,
        /// How many there are.
        found: usize,
    },

    /// The payload is not an in-toto statement this verifier accepts.
    #[error("in-toto statement: {detail}")]
    Statement {
        /// What is wrong.
        detail: String,
    },

    /// The artifact digest is none of the statement's subject digests.
    #[error("subject digest: artifact {artifact} is none of the {subjects} subject digests")]
    SubjectDigest {
        /// The artifact digest, `alg:hex`.
        artifact: String,
        /// How many subjects the statement has.
        subjects: usize,
    },

    /// The predicate type differs from the expected one.
    #[error("predicate type: statement has {actual:?}, expected {expected:?}")]
    PredicateType {
        /// The expected predicate type.
        expected: String,
        /// The statement's predicate type.
        actual: String,
    },

    /// A certificate value does not equal the value the policy requires.
    #[error("{check}: certificate has {}, expected {expected:?}{hint}", display_opt(actual))]
    Mismatch {
        /// The check that failed.
        check: Check,
        /// The required value (or pattern).
        expected: String,
        /// The certificate's value, if it has one.
        actual: Option<String>,
        /// An extra hint (for example about `--cert-oidc-issuer`), or empty.
        hint: String,
    },

    /// The policy is invalid.
    #[error("policy: {detail}")]
    Policy {
        /// What is wrong.
        detail: String,
    },

    /// One bundle of a multi-bundle file failed; every bundle must verify.
    #[error("bundle {index} of {count}: {source}")]
    InBundle {
        /// The zero-based index of the bundle in the file.
        index: usize,
        /// How many bundles the file has.
        count: usize,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The check that failed.
    pub fn check(&self) -> Check {
        match self {
            Error::BundleFormat { .. } => Check::BundleFormat,
            Error::BundleVersion { .. } => Check::BundleVersion,
            Error::TrustedRoot { .. } => Check::TrustedRoot,
            Error::NoRootForIssuer { .. } | Error::LeafIssuerOrganisation { .. } => {
                Check::RootSelection
            }
            Error::Crypto { check, .. }
            | Error::Threshold { check, .. }
            | Error::Mismatch { check, .. } => *check,
            Error::Statement { .. } => Check::Statement,
            Error::SubjectDigest { .. } => Check::SubjectDigest,
            Error::PredicateType { .. } => Check::PredicateType,
            Error::Policy { .. } => Check::Policy,
            Error::InBundle { source, .. } => source.check(),
        }
    }
}

fn display_opt(value: &Option<String>) -> String {
    match value {
        Some(v) => format!("{v:?}"),
        None => "no value".to_owned(),
    }
}
