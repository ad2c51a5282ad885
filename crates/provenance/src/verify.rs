//! Verification of bundles against trusted roots, an artifact digest and a policy: root and
//! instance selection as gh does, the instance's thresholds, then statement and identity policy.

use serde::Serialize;

use crate::backend::{self, Requirements};
use crate::digest::ArtifactDigest;
use crate::error::{Check, Error, Result};
use crate::identity::CertificateIdentity;
use crate::load::{Bundle, TrustedRoots, in_bundle};
use crate::policy::Policy;
use crate::statement;

/// The Sigstore instance a bundle was verified against, chosen by the leaf issuer's organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Instance {
    /// `O=sigstore.dev`: at least one SCT, one transparency-log entry (every entry verified) and
    /// one verified signing time.
    PublicGood,
    /// `O=GitHub, Inc.`: at least one RFC 3161 timestamp from the root's TSAs (every one
    /// verified); no transparency log and no SCT, as gh.
    GitHub,
    /// Any other organisation: at least one verified signing time, and at least one
    /// transparency-log entry (every entry verified) when the root lists logs; no SCT.
    Other(String),
}

impl Instance {
    fn from_org(org: &str) -> Self {
        match org {
            "sigstore.dev" => Instance::PublicGood,
            "GitHub, Inc." => Instance::GitHub,
            other => Instance::Other(other.to_owned()),
        }
    }

    fn name(&self) -> String {
        match self {
            Instance::PublicGood => "public-good (sigstore.dev)".into(),
            Instance::GitHub => "GitHub (GitHub, Inc.)".into(),
            Instance::Other(org) => format!("{org:?}"),
        }
    }
}

/// A verified bundle: what was checked and what it says.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Verified {
    /// The instance whose root and thresholds were used.
    pub instance: Instance,
    /// The bundle media type.
    pub media_type: &'static str,
    /// The leaf certificate's identity claims.
    pub identity: CertificateIdentity,
    /// The verified signing times, Unix seconds (RFC 3161 times and SET-backed integrated times).
    pub signing_times: Vec<i64>,
    /// The in-toto statement, as signed.
    pub statement: serde_json::Value,
    /// The statement's predicate type.
    pub predicate_type: String,
    /// The checks that ran and passed, in order.
    pub checks: Vec<Check>,
}

/// Verifies every bundle (gh parity: one failure fails the whole file).
///
/// Returns one [`Verified`] per bundle, in file order.
pub fn verify(
    bundles: &[Bundle],
    roots: &TrustedRoots,
    artifact: &ArtifactDigest,
    policy: &Policy,
) -> Result<Vec<Verified>> {
    if bundles.is_empty() {
        return Err(Error::BundleFormat { detail: "no bundle to verify".into() });
    }
    let count = bundles.len();
    bundles
        .iter()
        .enumerate()
        .map(|(i, b)| verify_bundle(b, roots, artifact, policy).map_err(|e| in_bundle(e, i, count)))
        .collect()
}

/// Verifies one bundle.
pub fn verify_bundle(
    bundle: &Bundle,
    roots: &TrustedRoots,
    artifact: &ArtifactDigest,
    policy: &Policy,
) -> Result<Verified> {
    let compiled = policy.compile()?;
    let parsed = &bundle.parsed;
    let mut checks = vec![Check::BundleFormat];

    let minor = parsed.minor_version();
    if minor < policy.min_bundle_minor {
        return Err(Error::BundleVersion {
            media_type: parsed.media_type().to_owned(),
            min_minor: policy.min_bundle_minor,
        });
    }
    checks.push(Check::BundleVersion);

    // gh: the first CA (over the roots in file order) whose lowest certificate's issuer
    // organisation equals the leaf issuer's organisation picks the root and the instance.
    let leaf_org = parsed.leaf_issuer_org()?;
    let mut root_orgs = Vec::new();
    let mut chosen = None;
    for root in &roots.roots {
        for org in root.ca_orgs().into_iter().flatten() {
            if chosen.is_none() && org == leaf_org {
                chosen = Some(root);
            }
            root_orgs.push(org);
        }
    }
    let root =
        chosen.ok_or_else(|| Error::NoRootForIssuer { leaf_org: leaf_org.clone(), root_orgs })?;
    checks.push(Check::RootSelection);

    let instance = Instance::from_org(&leaf_org);
    let req = match &instance {
        Instance::PublicGood => Requirements { tlog: true, sct: true },
        Instance::GitHub => Requirements { tlog: false, sct: false },
        Instance::Other(_) => Requirements { tlog: root.has_tlogs(), sct: false },
    };
    let threshold = |check, what, found: usize| {
        if found >= 1 {
            Ok(())
        } else {
            Err(Error::Threshold { check, instance: instance.name(), what, required: 1, found })
        }
    };
    if req.tlog {
        threshold(Check::TransparencyLog, "transparency-log entry", parsed.tlog_entries())?;
    }
    if instance == Instance::GitHub {
        threshold(Check::Timestamp, "RFC 3161 timestamp", parsed.rfc3161_timestamps())?;
    }

    backend::check_log_entries(parsed, root, req.tlog)?;
    let crypto = backend::verify_crypto(parsed, root, artifact, req)?;
    checks.push(Check::Timestamp);
    checks.push(Check::CertificateChain);
    if crypto.sct_verified {
        checks.push(Check::Sct);
    }
    if crypto.tlog_verified {
        checks.push(Check::TransparencyLog);
    }
    checks.push(Check::Signature);
    if parsed.tlog_entries() > 0 {
        checks.push(Check::LogEntryConsistency);
    }

    let statement = statement::parse(&crypto.payload)?;
    checks.push(Check::Statement);
    compiled.check_predicate_type(&statement.predicate_type)?;
    checks.push(Check::PredicateType);
    statement.check_subject(artifact)?;
    checks.push(Check::SubjectDigest);
    checks.extend(compiled.check_identity(&crypto.identity)?);

    Ok(Verified {
        instance,
        media_type: parsed.media_type(),
        identity: crypto.identity,
        signing_times: crypto.times,
        predicate_type: statement.predicate_type,
        statement: statement.value,
        checks,
    })
}
