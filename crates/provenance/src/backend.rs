//! The one module that talks to the cryptographic core, `sigstore-verify` (pinned exactly in the
//! workspace `Cargo.toml`), and to `x509-cert`.
//!
//! A version bump or a swap of the core touches this file only: the rest of the crate sees
//! [`ParsedBundle`], [`ParsedRoot`], [`Requirements`] and [`CryptoVerified`].
//!
//! What the core checks for us (sigstore-verify 0.15.1, `Verifier::verify`): verified signing
//! times (RFC 3161 tokens against the root's TSAs and their validity windows, and Rekor v1
//! integrated times backed by a signed entry timestamp), the leaf chain to a Fulcio CA of the
//! root at every verified time with the code-signing usage, the SCT (when required), every
//! transparency-log entry (inclusion proof against a signed checkpoint, SET, integrated time
//! inside the leaf's validity) when required, the DSSE signature over PAE, the artifact digest
//! against the statement's subjects, and that every log entry's body describes this bundle.
//! The core reads the wall clock only to reject: integrated times in the future and log keys
//! whose validity starts in the future; acceptance never depends on it.

use sigstore_verify::crypto::SubjectAltName;
use sigstore_verify::trust_root::TrustedRoot;
use sigstore_verify::types::bundle::VerificationMaterialContent;
use sigstore_verify::types::{
    ArtifactDigest as CoreDigest, Bundle, HashAlgorithm, KindVersion, MediaType, SignatureContent,
};
use sigstore_verify::{
    CertificateError, Error as CoreError, TimestampError, TransparencyLogError, VerificationPolicy,
    Verifier,
};
use x509_cert::Certificate;
use x509_cert::der::Decode;
use x509_cert::der::asn1::{ObjectIdentifier, PrintableStringRef, Utf8StringRef};
use x509_cert::name::Name;

use crate::error::{Check, Error, Result};
use crate::identity::CertificateIdentity;
use crate::{ArtifactDigest, DigestAlgorithm};

/// `id-at-organizationName` (RFC 4519).
const ORGANIZATION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");

/// A bundle the core has parsed.
#[derive(Debug, Clone)]
pub(crate) struct ParsedBundle(Bundle);

/// Parses one bundle (one JSON document).
pub(crate) fn parse_bundle(json: &str) -> Result<ParsedBundle> {
    Bundle::from_json(json)
        .map(ParsedBundle)
        .map_err(|e| Error::BundleFormat { detail: format!("not a Sigstore bundle: {e}") })
}

impl ParsedBundle {
    /// The media type's minor version: 1, 2 or 3.
    pub(crate) fn minor_version(&self) -> u8 {
        match self.0.media_type {
            MediaType::Bundle0_1 => 1,
            MediaType::Bundle0_2 => 2,
            // The core's `MediaType` is non-exhaustive; anything it parses beyond v0.2 is v0.3.
            _ => 3,
        }
    }

    /// The media type as the bundle spells it (normalised by the core).
    pub(crate) fn media_type(&self) -> &'static str {
        self.0.media_type.as_str()
    }

    /// How many transparency-log entries the bundle carries.
    pub(crate) fn tlog_entries(&self) -> usize {
        self.0.verification_material.tlog_entries.len()
    }

    /// How many RFC 3161 timestamps the bundle carries.
    pub(crate) fn rfc3161_timestamps(&self) -> usize {
        self.0.verification_material.timestamp_verification_data.rfc3161_timestamps.len()
    }

    /// The leaf certificate, DER, if the bundle has one.
    fn leaf_der(&self) -> Option<&[u8]> {
        match &self.0.verification_material.content {
            VerificationMaterialContent::Certificate(_)
            | VerificationMaterialContent::X509CertificateChain { .. } => {
                self.0.signing_certificate().map(|c| c.as_bytes())
            }
            _ => None,
        }
    }

    /// The leaf issuer's organisation (`O=`), which picks the trusted root as gh does; an error
    /// unless the bundle has a DSSE envelope, a leaf certificate, and exactly one `O=` in its
    /// issuer.
    pub(crate) fn leaf_issuer_org(&self) -> Result<String> {
        if !matches!(self.0.content, SignatureContent::DsseEnvelope(_)) {
            return Err(Error::BundleFormat {
                detail: "the bundle has no DSSE envelope (an attestation is always one)".into(),
            });
        }
        let der = self.leaf_der().ok_or_else(|| Error::BundleFormat {
            detail: "the bundle has no signing certificate (a public-key bundle is not a GitHub attestation)".into(),
        })?;
        let cert = Certificate::from_der(der).map_err(|e| Error::BundleFormat {
            detail: format!("the signing certificate is not DER X.509: {e}"),
        })?;
        let orgs = organisations(&cert.tbs_certificate.issuer);
        match <[String; 1]>::try_from(orgs) {
            Ok([org]) => Ok(org),
            Err(orgs) => Err(Error::LeafIssuerOrganisation { orgs }),
        }
    }

    /// The DSSE payload bytes, if the bundle is a DSSE envelope.
    fn payload(&self) -> Option<&[u8]> {
        match &self.0.content {
            SignatureContent::DsseEnvelope(env) => Some(env.payload.as_bytes()),
            _ => None,
        }
    }
}

/// Our own checks on each transparency-log entry, on top of the core's: the inclusion proof's
/// tree size and root hash equal the signed checkpoint's, a Rekor v2 proof's index equals the
/// entry's, and (when the log is required) the entry names a log of the root.
///
/// The core verifies Rekor v2 proofs from the entry index and the checkpoint and ignores the
/// proof's duplicate fields; a bundle whose duplicates disagree is malformed, so it is refused
/// rather than silently read one way.
pub(crate) fn check_log_entries(
    bundle: &ParsedBundle,
    root: &ParsedRoot,
    log_required: bool,
) -> Result<()> {
    let fail = |i: usize, detail: String| Error::Crypto {
        check: Check::TransparencyLog,
        detail: format!("log entry {i}: {detail}"),
    };
    for (i, entry) in bundle.0.verification_material.tlog_entries.iter().enumerate() {
        if log_required
            && !root
                .0
                .tlogs
                .iter()
                .any(|log| log.log_id.key_id.as_bytes() == entry.log_id.key_id.as_bytes())
        {
            return Err(fail(
                i,
                format!("log id {} is not a log of the trusted root", entry.log_id.key_id),
            ));
        }
        let Some(proof) = &entry.inclusion_proof else { continue };
        let Some(checkpoint) = proof.checkpoint.checkpoint() else {
            return Err(fail(i, "the inclusion proof has no parsable signed checkpoint".into()));
        };
        if proof.tree_size != checkpoint.tree_size() {
            return Err(fail(
                i,
                format!(
                    "inclusion proof tree size {} differs from the checkpoint's {}",
                    proof.tree_size,
                    checkpoint.tree_size()
                ),
            ));
        }
        if proof.root_hash.as_bytes() != checkpoint.root_hash().as_bytes() {
            return Err(fail(
                i,
                format!(
                    "inclusion proof root hash {} differs from the checkpoint's {}",
                    proof.root_hash.to_hex(),
                    checkpoint.root_hash().to_hex()
                ),
            ));
        }
        if entry.kind_version == KindVersion::HashedRekordV002
            && proof.log_index.get() != entry.log_index.get()
        {
            return Err(fail(
                i,
                format!(
                    "Rekor v2 inclusion proof index {} differs from the entry's {}",
                    proof.log_index.get(),
                    entry.log_index.get()
                ),
            ));
        }
    }
    Ok(())
}

/// Every `O=` value of a name that decodes as a string.
fn organisations(name: &Name) -> Vec<String> {
    let mut out = Vec::new();
    for rdn in name.0.iter() {
        for attr in rdn.0.iter() {
            if attr.oid != ORGANIZATION {
                continue;
            }
            if let Ok(s) = attr.value.decode_as::<Utf8StringRef<'_>>() {
                out.push(s.as_str().to_owned());
            } else if let Ok(s) = attr.value.decode_as::<PrintableStringRef<'_>>() {
                out.push(s.as_str().to_owned());
            } else {
                // An organisation we cannot read still counts, so "exactly one" stays honest.
                out.push(String::from("<undecodable>"));
            }
        }
    }
    out
}

/// A trusted root the core has parsed.
#[derive(Debug, Clone)]
pub(crate) struct ParsedRoot(TrustedRoot);

/// Parses one trusted root (one JSON document).
pub(crate) fn parse_root(json: &str) -> Result<ParsedRoot> {
    let root = TrustedRoot::from_json(json)
        .map_err(|e| Error::TrustedRoot { detail: format!("not a Sigstore trusted root: {e}") })?;
    Ok(ParsedRoot(root))
}

impl ParsedRoot {
    /// For each Fulcio CA, the issuer `O=` of its lowest certificate (the first of its chain), as
    /// gh compares them; `None` for a CA whose certificate does not parse or has no single `O=`.
    pub(crate) fn ca_orgs(&self) -> Vec<Option<String>> {
        self.0
            .certificate_authorities
            .iter()
            .map(|ca| {
                let first = ca.cert_chain.certificates.first()?;
                let cert = Certificate::from_der(first.raw_bytes.as_bytes()).ok()?;
                let orgs = organisations(&cert.tbs_certificate.issuer);
                <[String; 1]>::try_from(orgs).ok().map(|[o]| o)
            })
            .collect()
    }

    /// Whether the root lists transparency logs.
    pub(crate) fn has_tlogs(&self) -> bool {
        !self.0.tlogs.is_empty()
    }
}

/// Which optional parts of the core's checks run; chosen per instance by the caller.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Requirements {
    /// Verify every log entry's inclusion proof, checkpoint and SET.
    pub(crate) tlog: bool,
    /// Verify the leaf's SCT.
    pub(crate) sct: bool,
}

/// What the core verified.
#[derive(Debug)]
pub(crate) struct CryptoVerified {
    /// The certificate's identity claims.
    pub(crate) identity: CertificateIdentity,
    /// The verified signing times, Unix seconds.
    pub(crate) times: Vec<i64>,
    /// The DSSE payload, now authenticated.
    pub(crate) payload: Vec<u8>,
    /// Whether log inclusion was verified.
    pub(crate) tlog_verified: bool,
    /// Whether the SCT was verified.
    pub(crate) sct_verified: bool,
}

/// Runs the core's verification of `bundle` against `root` for `digest`.
pub(crate) fn verify_crypto(
    bundle: &ParsedBundle,
    root: &ParsedRoot,
    digest: &ArtifactDigest,
    req: Requirements,
) -> Result<CryptoVerified> {
    let verifier = Verifier::new(&root.0).map_err(map_core)?;
    let mut policy = VerificationPolicy::any_identity();
    if !req.tlog {
        policy = policy.skip_tlog_unsafe();
    }
    if !req.sct {
        policy = policy.skip_sct();
    }
    let alg = match digest.algorithm() {
        DigestAlgorithm::Sha256 => HashAlgorithm::Sha2256,
        DigestAlgorithm::Sha512 => HashAlgorithm::Sha2512,
    };
    let core_digest = CoreDigest::new(alg, digest.bytes().to_vec()).map_err(|e| Error::Policy {
        detail: format!("artifact digest {digest} is not usable: {e}"),
    })?;
    let result = verifier.verify(core_digest, &bundle.0, &policy).map_err(map_core)?;

    // The core reports what it checked; insist on it rather than trusting the policy flags.
    if !result.certificate_verified() {
        return Err(Error::Crypto {
            check: Check::CertificateChain,
            detail: "the core did not verify the certificate chain".into(),
        });
    }
    if req.tlog && !result.tlog_verified() {
        return Err(Error::Crypto {
            check: Check::TransparencyLog,
            detail: "the core did not verify the transparency log".into(),
        });
    }
    if req.sct && !result.sct_verified() {
        return Err(Error::Crypto {
            check: Check::Sct,
            detail: "the core did not verify the SCT".into(),
        });
    }
    let times: Vec<i64> = result.verified_timestamps().iter().map(|t| t.as_second()).collect();
    if times.is_empty() {
        return Err(Error::Crypto {
            check: Check::Timestamp,
            detail: "no verified signing time".into(),
        });
    }
    let cert = result.certificate().ok_or_else(|| Error::Crypto {
        check: Check::CertificateChain,
        detail: "the core returned no certificate".into(),
    })?;
    let c = &cert.ci_claims;
    let identity = CertificateIdentity {
        san: match result.identity() {
            Some(SubjectAltName::Uri(u)) => Some(u.clone()),
            Some(SubjectAltName::Email(e)) => Some(e.clone()),
            Some(other) => Some(other.as_str().to_owned()),
            None => None,
        },
        issuer: result.issuer().map(str::to_owned),
        build_signer_uri: c.build_signer_uri.clone(),
        build_signer_digest: c.build_signer_digest.clone(),
        runner_environment: c.runner_environment.clone(),
        source_repository_uri: c.source_repository_uri.clone(),
        source_repository_digest: c.source_repository_digest.clone(),
        source_repository_ref: c.source_repository_ref.clone(),
        source_repository_owner_uri: c.source_repository_owner_uri.clone(),
        build_config_uri: c.build_config_uri.clone(),
        run_invocation_uri: c.run_invocation_uri.clone(),
    };
    let payload = bundle
        .payload()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Error::BundleFormat { detail: "the bundle has no DSSE envelope".into() })?;
    Ok(CryptoVerified {
        identity,
        times,
        payload,
        tlog_verified: result.tlog_verified(),
        sct_verified: result.sct_verified(),
    })
}

/// Maps a core error to the check it belongs to, keeping the core's message.
fn map_core(e: CoreError) -> Error {
    let check = match &e {
        CoreError::SignatureInvalid(_) => Check::Signature,
        CoreError::ArtifactMismatch(_) | CoreError::UnsupportedArtifact(_) => Check::SubjectDigest,
        CoreError::Certificate(CertificateError::Sct(_)) => Check::Sct,
        CoreError::Certificate(_) => Check::CertificateChain,
        CoreError::TransparencyLog(TransparencyLogError::EntryMismatch(_)) => {
            Check::LogEntryConsistency
        }
        CoreError::TransparencyLog(_) => Check::TransparencyLog,
        CoreError::Timestamp(TimestampError::NoVerifiedTimestamp(_)) => Check::Timestamp,
        CoreError::Timestamp(_) => Check::Timestamp,
        CoreError::InvalidTrustRoot(_)
        | CoreError::TrustRoot(_)
        | CoreError::TrustedCertificate(_) => Check::TrustedRoot,
        CoreError::InvalidBundle(_) | CoreError::UnsupportedBundle(_) | CoreError::Bundle(_) => {
            Check::BundleFormat
        }
        // Identity and issuer are never set on the core policy (this crate checks them), and
        // anything else is a parse failure of some part of the bundle.
        _ => Check::BundleFormat,
    };
    Error::Crypto { check, detail: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisation_oid_is_rfc4519() {
        assert_eq!(ORGANIZATION.to_string(), "2.5.4.10");
    }

    #[test]
    fn garbage_is_a_bundle_format_error() {
        let err = parse_bundle("{}").unwrap_err();
        assert_eq!(err.check(), Check::BundleFormat);
        let err = parse_root("[]").unwrap_err();
        assert_eq!(err.check(), Check::TrustedRoot);
    }
}
