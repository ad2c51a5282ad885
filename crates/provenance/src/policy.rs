//! The identity and statement policy `gh attestation verify` applies, with its flag names.
//!
//! gh's rules (cli/cli `pkg/cmd/attestation`, and the help text of gh 2.92 for the flags added
//! later), restated:
//! - `--repo OWNER/REPO` or `--owner OWNER` is required. The Source Repository Owner URI must
//!   be `https://HOST/OWNER` and, with `--repo`, the Source Repository URI `https://HOST/OWNER/REPO`
//!   (both compared case-insensitively).
//! - The SAN (the signer workflow) is matched by at most one signer flag: `--cert-identity`
//!   (exact), `--cert-identity-regex` (a regular expression, unanchored), `--signer-repo`
//!   (`(?i)^https://HOST/OWNER/REPO/`) or `--signer-workflow` (`^https://[HOST/]VALUE`, where
//!   VALUE is a regular expression anchored at its start only, as gh builds it). Without one,
//!   the SAN must match `(?i)^https://HOST/<repo or owner>/`. Owner and repository names are
//!   escaped before they go into a pattern (gh interpolates them; escaping can only reject
//!   more).
//! - `--cert-oidc-issuer` (default GitHub Actions) must equal the certificate's issuer exactly.
//! - `--source-ref`, `--source-digest` and `--signer-digest` must equal their extensions exactly;
//!   `--deny-self-hosted-runners` requires the Runner Environment `github-hosted`.
//! - `--predicate-type` (default SLSA provenance v1) must equal the statement's.

use regex::Regex;

use crate::error::{Check, Error, Result};
use crate::identity::CertificateIdentity;

/// The OIDC issuer of GitHub Actions, gh's default `--cert-oidc-issuer`.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// SLSA provenance v1, gh's default `--predicate-type`.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// Whose repository the artifact must come from (gh: `--repo` or `--owner`, one required).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--repo OWNER/REPO`.
    Repo(String),
    /// `--owner OWNER`.
    Owner(String),
}

/// How the certificate's SAN (the signer workflow) is matched; gh allows at most one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Signer {
    /// No signer flag: the SAN must be under the `--repo`/`--owner` (gh's default).
    #[default]
    Default,
    /// `--cert-identity`: the exact SAN.
    CertIdentity(String),
    /// `--cert-identity-regex`: a regular expression the SAN must match.
    CertIdentityRegex(String),
    /// `--signer-repo OWNER/REPO`: the signer workflow lives in this repository.
    SignerRepo(String),
    /// `--signer-workflow [HOST/]OWNER/REPO/PATH`: a regular expression matched from the start
    /// of the SAN after `https://`.
    SignerWorkflow(String),
}

/// Everything a verification requires beyond the cryptography, named after gh's flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `--repo` or `--owner`.
    pub source: Source,
    /// The signer flag, if any.
    pub signer: Signer,
    /// `--cert-oidc-issuer`.
    pub cert_oidc_issuer: String,
    /// `--source-ref`.
    pub source_ref: Option<String>,
    /// `--source-digest`.
    pub source_digest: Option<String>,
    /// `--signer-digest`.
    pub signer_digest: Option<String>,
    /// `--deny-self-hosted-runners`.
    pub deny_self_hosted_runners: bool,
    /// `--predicate-type`.
    pub predicate_type: String,
    /// `--hostname`: the GitHub host in URIs; `github.com`.
    pub hostname: String,
    /// The oldest bundle media type accepted, as the minor of `v0.N`: 2 as gh; 1 accepts v0.1.
    pub min_bundle_minor: u8,
}

impl Policy {
    /// gh's defaults for `--repo OWNER/REPO`.
    pub fn for_repo(repo: &str) -> Self {
        Self::new(Source::Repo(repo.to_owned()))
    }

    /// gh's defaults for `--owner OWNER`.
    pub fn for_owner(owner: &str) -> Self {
        Self::new(Source::Owner(owner.to_owned()))
    }

    fn new(source: Source) -> Self {
        Policy {
            source,
            signer: Signer::Default,
            cert_oidc_issuer: GITHUB_ACTIONS_ISSUER.to_owned(),
            source_ref: None,
            source_digest: None,
            signer_digest: None,
            deny_self_hosted_runners: false,
            predicate_type: SLSA_PROVENANCE_V1.to_owned(),
            hostname: "github.com".to_owned(),
            min_bundle_minor: 2,
        }
    }

    /// Validates the policy and compiles its patterns.
    pub(crate) fn compile(&self) -> Result<Compiled<'_>> {
        let bad = |detail: String| Error::Policy { detail };
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !name_ok(&self.hostname) {
            return Err(bad(format!("hostname {:?} is not a host name", self.hostname)));
        }
        let (owner, repo) = match &self.source {
            Source::Repo(r) => match r.split_once('/') {
                Some((o, n)) if name_ok(o) && name_ok(n) => (o, Some(r.as_str())),
                _ => return Err(bad(format!("--repo {r:?} is not OWNER/REPO"))),
            },
            Source::Owner(o) if name_ok(o) => (o.as_str(), None),
            Source::Owner(o) => return Err(bad(format!("--owner {o:?} is not an owner name"))),
        };
        let host = &self.hostname;
        let san = match &self.signer {
            Signer::Default => {
                let under = repo.unwrap_or(owner);
                SanMatcher::Regex(pattern(&format!(
                    "(?i)^https://{}/{}/",
                    regex::escape(host),
                    regex::escape(under)
                ))?)
            }
            Signer::CertIdentity(s) => SanMatcher::Exact(s.clone()),
            Signer::CertIdentityRegex(r) => SanMatcher::Regex(pattern(r)?),
            Signer::SignerRepo(r) => {
                match r.split_once('/') {
                    Some((o, n)) if name_ok(o) && name_ok(n) => SanMatcher::Regex(pattern(
                        &format!("(?i)^https://{}/{}/", regex::escape(host), regex::escape(r)),
                    )?),
                    _ => return Err(bad(format!("--signer-repo {r:?} is not OWNER/REPO"))),
                }
            }
            Signer::SignerWorkflow(w) => {
                if w.starts_with("https://") || w.starts_with("http://") {
                    return Err(bad(format!(
                        "--signer-workflow {w:?} must not start with a scheme: give [HOST/]OWNER/REPO/PATH"
                    )));
                }
                // gh: a value whose first segment looks like a host name (`x.y...`) carries its
                // own host; otherwise the host is prepended.
                let has_host = w
                    .split('/')
                    .next()
                    .and_then(|first| first.split_once('.'))
                    .is_some_and(|(a, b)| name_ok(a) && !b.is_empty());
                let value = if has_host { w.clone() } else { format!("{host}/{w}") };
                SanMatcher::Regex(pattern(&format!("^https://{value}"))?)
            }
        };
        Ok(Compiled {
            policy: self,
            san,
            owner_uri: format!("https://{host}/{owner}"),
            repo_uri: repo.map(|r| format!("https://{host}/{r}")),
        })
    }
}

/// Compiles a pattern with a bounded size.
fn pattern(p: &str) -> Result<Regex> {
    regex::RegexBuilder::new(p)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| Error::Policy { detail: format!("invalid regular expression {p:?}: {e}") })
}

enum SanMatcher {
    Exact(String),
    Regex(Regex),
}

/// A validated policy with its patterns compiled.
pub(crate) struct Compiled<'a> {
    pub(crate) policy: &'a Policy,
    san: SanMatcher,
    owner_uri: String,
    repo_uri: Option<String>,
}

impl Compiled<'_> {
    /// Checks the predicate type.
    pub(crate) fn check_predicate_type(&self, actual: &str) -> Result<()> {
        if actual == self.policy.predicate_type {
            Ok(())
        } else {
            Err(Error::PredicateType {
                expected: self.policy.predicate_type.clone(),
                actual: actual.to_owned(),
            })
        }
    }

    /// Checks the certificate identity; returns the checks that passed, in order.
    pub(crate) fn check_identity(&self, id: &CertificateIdentity) -> Result<Vec<Check>> {
        let mut passed = Vec::new();
        let p = self.policy;

        let (ok, expected) = match (&self.san, &id.san) {
            (SanMatcher::Exact(want), Some(san)) => (san == want, want.clone()),
            (SanMatcher::Regex(re), Some(san)) => (re.is_match(san), re.as_str().to_owned()),
            (SanMatcher::Exact(want), None) => (false, want.clone()),
            (SanMatcher::Regex(re), None) => (false, re.as_str().to_owned()),
        };
        if !ok {
            return Err(mismatch(Check::SignerIdentity, expected, &id.san, ""));
        }
        passed.push(Check::SignerIdentity);

        eq_fold(Check::SourceRepositoryOwner, &self.owner_uri, &id.source_repository_owner_uri)?;
        passed.push(Check::SourceRepositoryOwner);
        if let Some(repo_uri) = &self.repo_uri {
            eq_fold(Check::SourceRepository, repo_uri, &id.source_repository_uri)?;
            passed.push(Check::SourceRepository);
        }

        if id.issuer.as_deref() != Some(p.cert_oidc_issuer.as_str()) {
            let hint = match &id.issuer {
                Some(actual) if actual.starts_with(&format!("{}/", p.cert_oidc_issuer)) => {
                    " (the certificate's issuer is below the expected one, as with an enterprise's custom issuer: if you trust it, pass it with --cert-oidc-issuer)"
                }
                _ => "",
            };
            return Err(mismatch(Check::Issuer, p.cert_oidc_issuer.clone(), &id.issuer, hint));
        }
        passed.push(Check::Issuer);

        for (check, want, actual) in [
            (Check::SourceRef, &p.source_ref, &id.source_repository_ref),
            (Check::SourceDigest, &p.source_digest, &id.source_repository_digest),
            (Check::SignerDigest, &p.signer_digest, &id.build_signer_digest),
        ] {
            if let Some(want) = want {
                if actual.as_deref() != Some(want.as_str()) {
                    return Err(mismatch(check, want.clone(), actual, ""));
                }
                passed.push(check);
            }
        }

        if p.deny_self_hosted_runners {
            if id.runner_environment.as_deref() != Some("github-hosted") {
                return Err(mismatch(
                    Check::RunnerEnvironment,
                    "github-hosted".into(),
                    &id.runner_environment,
                    " (--deny-self-hosted-runners is set)",
                ));
            }
            passed.push(Check::RunnerEnvironment);
        }
        Ok(passed)
    }
}

fn eq_fold(check: Check, want: &str, actual: &Option<String>) -> Result<()> {
    match actual {
        Some(a) if a.eq_ignore_ascii_case(want) => Ok(()),
        _ => Err(mismatch(check, want.to_owned(), actual, "")),
    }
}

fn mismatch(check: Check, expected: String, actual: &Option<String>, hint: &str) -> Error {
    Error::Mismatch { check, expected, actual: actual.clone(), hint: hint.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(san: &str) -> CertificateIdentity {
        CertificateIdentity {
            san: Some(san.to_owned()),
            issuer: Some(GITHUB_ACTIONS_ISSUER.to_owned()),
            source_repository_owner_uri: Some("https://github.com/Acme".into()),
            source_repository_uri: Some("https://github.com/Acme/App".into()),
            runner_environment: Some("github-hosted".into()),
            ..Default::default()
        }
    }

    fn check(policy: &Policy, san: &str) -> std::result::Result<(), Check> {
        policy.compile().unwrap().check_identity(&id(san)).map(drop).map_err(|e| e.check())
    }

    #[test]
    fn default_san_is_under_the_repo_case_insensitively() {
        let p = Policy::for_repo("acme/app");
        assert_eq!(
            check(&p, "https://github.com/ACME/app/.github/workflows/r.yml@refs/heads/main"),
            Ok(())
        );
        assert_eq!(
            check(&p, "https://github.com/acme/app2/.github/workflows/r.yml@x"),
            Err(Check::SignerIdentity)
        );
        assert_eq!(check(&p, "https://github.com/acme/app"), Err(Check::SignerIdentity));
        assert_eq!(check(&p, "https://evil.com/acme/app/x"), Err(Check::SignerIdentity));
    }

    #[test]
    fn signer_workflow_is_anchored_at_the_start_like_gh() {
        let mut p = Policy::for_repo("acme/app");
        p.signer = Signer::SignerWorkflow("acme/app/.github/workflows/r.yml".into());
        assert_eq!(
            check(&p, "https://github.com/acme/app/.github/workflows/r.yml@refs/heads/main"),
            Ok(())
        );
        assert_eq!(
            check(&p, "https://evil.example/https://github.com/acme/app/.github/workflows/r.yml"),
            Err(Check::SignerIdentity)
        );
        assert_eq!(
            check(&p, "https://github.com/acme/app/.github/workflows/other.yml@x"),
            Err(Check::SignerIdentity)
        );
        p.signer = Signer::SignerWorkflow("github.com/acme/app/.github/workflows/r.yml".into());
        assert_eq!(
            check(&p, "https://github.com/acme/app/.github/workflows/r.yml@refs/heads/main"),
            Ok(())
        );
        p.signer = Signer::SignerWorkflow("https://github.com/acme/app/x.yml".into());
        assert!(p.compile().is_err());
    }

    #[test]
    fn extensions_are_compared() {
        let mut p = Policy::for_repo("acme/app");
        p.source_ref = Some("refs/heads/main".into());
        assert_eq!(check(&p, "https://github.com/acme/app/w@x"), Err(Check::SourceRef));
        let p = Policy::for_repo("acme/other");
        assert_eq!(check(&p, "https://github.com/acme/other/w@x"), Err(Check::SourceRepository));
        let p = Policy::for_owner("other");
        assert_eq!(check(&p, "https://github.com/other/w@x"), Err(Check::SourceRepositoryOwner));
        let mut p = Policy::for_repo("acme/app");
        p.cert_oidc_issuer = "https://example.com".into();
        assert_eq!(check(&p, "https://github.com/acme/app/w@x"), Err(Check::Issuer));
    }

    #[test]
    fn invalid_policies_are_rejected() {
        for p in [
            Policy::for_repo("noslash"),
            Policy::for_repo("a/b/c"),
            Policy::for_owner(""),
            Policy { signer: Signer::CertIdentityRegex("(".into()), ..Policy::for_owner("a") },
            Policy { signer: Signer::SignerRepo("x".into()), ..Policy::for_owner("a") },
        ] {
            assert_eq!(p.compile().err().map(|e| e.check()), Some(Check::Policy), "{p:?}");
        }
    }
}
