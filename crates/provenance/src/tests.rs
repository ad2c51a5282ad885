//! The shared provenance vectors (`$SECRETVM_VECTORS/provenance/cases.json`): every case's
//! verdict, and for a must-fail case the check that must reject it.
//!
//! Verdicts, policies and digests come from `cases.json`, written and cross-checked with
//! sigstore-python and sigstore-js before this crate existed. Its failure reasons are prose, so
//! [`EXPECTED_FAILURES`] maps each must-fail case to a [`Check`] and quotes a phrase of the
//! case's reason; the test fails if the phrase is no longer in `cases.json`, so the table cannot
//! drift from the vectors silently.

use serde_json::Value;

use crate::{
    ArtifactDigest, BundleFormat, Check, Policy, Signer, Source, parse_bundles,
    parse_trusted_roots, verify,
};

/// Must-fail case id, the check that must reject it, and a phrase of its `reason`.
const EXPECTED_FAILURES: &[(&str, Check, &str)] = &[
    ("custom-issuer-default-issuer", Check::Issuer, "issuer mismatch"),
    ("reusable-workflow-owner-only", Check::SignerIdentity, "SAN mismatch"),
    ("reusable-workflow-wrong-source-ref", Check::SourceRef, "Source Repository Ref is"),
    ("reusable-workflow-wrong-source-digest", Check::SourceDigest, "Source Repository Digest is"),
    (
        "foundry-deny-self-hosted",
        Check::RunnerEnvironment,
        "Runner Environment extension is self-hosted",
    ),
    ("foundry-artifact-not-in-subjects", Check::SubjectDigest, "is none of the 4 subject digests"),
    (
        "github-instance-without-github-root",
        Check::RootSelection,
        "the given root has only the public-good CA",
    ),
    ("conformance-dsse-invalid-sig", Check::Signature, "DSSE envelope signature is not valid"),
    (
        "conformance-dsse-mismatch-envelope",
        Check::LogEntryConsistency,
        "does not match the logged dsse entry",
    ),
    (
        "conformance-rekor2-dsse-invalid-sig",
        Check::Signature,
        "envelope signature was made with an unrelated key",
    ),
    (
        "conformance-intoto-expired-certificate",
        Check::CertificateChain,
        "outside the CA validity window",
    ),
    ("github-instance-missing-cert", Check::BundleFormat, "malformed"),
    ("bundle-v0.1-rejected", Check::BundleVersion, "rejects bundles older than v0.2"),
    ("predicate-type-mismatch", Check::PredicateType, "not the requested type"),
    ("release-attestation-not-provenance", Check::PredicateType, "not SLSA provenance"),
];

mod mutation;

fn cases() -> Option<Vec<Value>> {
    let bytes = secretvm_testkit::vector("provenance/cases.json")?;
    let doc: Value = serde_json::from_slice(&bytes).expect("cases.json is JSON");
    let cases = doc["cases"].as_array().expect("cases.json has cases").clone();
    assert_eq!(cases.len(), 24, "cases.json should hold the 24 documented cases");
    Some(cases)
}

fn text<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key].as_str().unwrap_or_else(|| panic!("case {} lacks {key}", case["id"]))
}

/// The policy a case's `policy` object describes (keys are gh's flag names).
fn policy_of(case: &Value) -> Policy {
    let p = &case["policy"];
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut policy = match (s("repo"), s("owner")) {
        (Some(repo), _) => Policy::for_repo(&repo),
        (None, Some(owner)) => Policy::for_owner(&owner),
        // The "crypto" layer cases name no repository (the certificate has no GitHub
        // extensions); gh would need some --owner, and the case must fail before policy.
        (None, None) => {
            assert_eq!(text(case, "layer"), "crypto", "{}: no --repo/--owner", case["id"]);
            Policy::for_owner("no-owner-given")
        }
    };
    if let Some(v) = s("signer-workflow") {
        policy.signer = Signer::SignerWorkflow(v);
    } else if let Some(v) = s("signer-repo") {
        policy.signer = Signer::SignerRepo(v);
    } else if let Some(v) = s("cert-identity") {
        policy.signer = Signer::CertIdentity(v);
    } else if let Some(v) = s("cert-identity-regex") {
        policy.signer = Signer::CertIdentityRegex(v);
    }
    if let Some(v) = s("cert-oidc-issuer") {
        policy.cert_oidc_issuer = v;
    }
    policy.source_ref = s("source-ref");
    policy.source_digest = s("source-digest");
    policy.signer_digest = s("signer-digest");
    policy.deny_self_hosted_runners = p.get("deny-self-hosted-runners") == Some(&Value::Bool(true));
    if let Some(v) = s("predicate-type") {
        policy.predicate_type = v;
    }
    let known = [
        "repo",
        "owner",
        "signer-workflow",
        "signer-repo",
        "cert-identity",
        "cert-identity-regex",
        "cert-oidc-issuer",
        "source-ref",
        "source-digest",
        "signer-digest",
        "deny-self-hosted-runners",
        "predicate-type",
    ];
    for key in p.as_object().expect("policy is an object").keys() {
        assert!(known.contains(&key.as_str()), "{}: unknown policy key {key}", case["id"]);
    }
    policy
}

/// Runs one case; `Ok(())` for a verified file, `Err(check)` for a rejected one.
fn run(case: &Value, policy: &Policy) -> Option<Result<(), (Check, String)>> {
    let bundle_bytes = secretvm_testkit::vector(&format!("provenance/{}", text(case, "bundle")))?;
    let root_bytes =
        secretvm_testkit::vector(&format!("provenance/{}", text(case, "trusted_root")))?;
    let format = match text(case, "bundle_format") {
        "json" => BundleFormat::Json,
        "jsonl" => BundleFormat::Jsonl,
        other => panic!("unknown bundle_format {other}"),
    };
    let digest: ArtifactDigest = text(case, "artifact_digest").parse().expect("digest parses");
    assert_eq!(digest.algorithm().name(), text(case, "digest_alg"));
    let roots = parse_trusted_roots(&root_bytes).expect("every vector root parses");
    let result = parse_bundles(&bundle_bytes, format)
        .and_then(|bundles| verify(&bundles, &roots, &digest, policy));
    Some(result.map(drop).map_err(|e| (e.check(), e.to_string())))
}

#[test]
fn every_vector_case_has_the_documented_verdict_and_failing_check() {
    let Some(cases) = cases() else { return };
    let mut failures = Vec::new();
    let mut passed = Vec::new();
    for case in &cases {
        let id = text(case, "id");
        let expected = text(case, "expected");
        let Some(outcome) = run(case, &policy_of(case)) else { return };
        let wrong = match (expected, &outcome) {
            ("verify", Ok(())) => None,
            ("verify", Err((check, msg))) => Some(format!("rejected by {check}: {msg}")),
            ("fail", Ok(())) => Some("verified, but must fail".to_owned()),
            ("fail", Err((check, msg))) => {
                let (_, want, phrase) = EXPECTED_FAILURES
                    .iter()
                    .find(|(i, _, _)| *i == id)
                    .unwrap_or_else(|| panic!("{id}: no expected check in EXPECTED_FAILURES"));
                assert!(
                    text(case, "reason").contains(phrase),
                    "{id}: cases.json's reason no longer says {phrase:?}"
                );
                (check != want).then(|| format!("rejected by {check}, expected {want}: {msg}"))
            }
            (other, _) => panic!("{id}: unknown expected verdict {other}"),
        };
        match wrong {
            None => passed.push(id),
            Some(why) => failures.push(format!("{id}: {why}")),
        }
    }
    assert_eq!(
        EXPECTED_FAILURES.len(),
        cases.iter().filter(|c| c["expected"] == "fail").count(),
        "EXPECTED_FAILURES and cases.json disagree on the must-fail cases"
    );
    assert!(failures.is_empty(), "{} of 24 cases wrong:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(passed.len(), 24);
}

/// CASES.md: the v0.1 bundle's crypto is valid, so a verifier that accepts v0.1 verifies it.
#[test]
fn the_v0_1_bundle_verifies_when_v0_1_is_allowed() {
    let Some(cases) = cases() else { return };
    let case = cases.iter().find(|c| c["id"] == "bundle-v0.1-rejected").expect("case exists");
    let mut policy = policy_of(case);
    policy.min_bundle_minor = 1;
    let Some(outcome) = run(case, &policy) else { return };
    assert_eq!(outcome, Ok(()));
}

/// A policy's source must be honoured even when the crypto is good: the right bundle for the
/// wrong repository fails on the repository, not earlier.
#[test]
fn a_good_bundle_for_another_repository_fails_on_the_repository() {
    let Some(cases) = cases() else { return };
    let case = cases.iter().find(|c| c["id"] == "conformance-dsse-slsa").expect("case exists");
    let mut policy = policy_of(case);
    policy.source = Source::Repo("sigstore-conformance/another-repo".into());
    policy.signer = Signer::CertIdentityRegex(".*".into());
    let Some(outcome) = run(case, &policy) else { return };
    assert_eq!(outcome.map_err(|(c, _)| c), Err(Check::SourceRepository));
}

/// Root selection is by the leaf issuer's organisation, not by position: with the two lines of
/// `trusted_root.jsonl` swapped, and with each root pretty-printed, the public-good and the
/// GitHub-instance cases still verify.
#[test]
fn roots_are_chosen_by_organisation_in_any_order_and_layout() {
    let Some(cases) = cases() else { return };
    let Some(jsonl) = secretvm_testkit::vector("provenance/roots/trusted_root.jsonl") else {
        return;
    };
    let lines: Vec<Value> = std::str::from_utf8(&jsonl)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), 2);
    let swapped = format!("{}\n{}", lines[1], lines[0]);
    let pretty: String =
        lines.iter().map(|l| serde_json::to_string_pretty(l).expect("serialises") + "\n").collect();
    for id in ["reusable-workflow-signer", "github-instance-private-repo"] {
        let case = cases.iter().find(|c| c["id"] == id).expect("case exists");
        let bundle = secretvm_testkit::vector(&format!("provenance/{}", text(case, "bundle")))
            .expect("bundle vector");
        let format = if text(case, "bundle_format") == "jsonl" {
            BundleFormat::Jsonl
        } else {
            BundleFormat::Json
        };
        let bundles = parse_bundles(&bundle, format).expect("bundle parses");
        let digest: ArtifactDigest = text(case, "artifact_digest").parse().expect("digest");
        for roots in [&swapped, &pretty] {
            let roots = parse_trusted_roots(roots.as_bytes()).expect("roots parse");
            assert_eq!(roots.len(), 2);
            verify(&bundles, &roots, &digest, &policy_of(case))
                .unwrap_or_else(|e| panic!("{id}: {e}"));
        }
    }
}
