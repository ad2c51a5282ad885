//! Mutation test: for each must-verify vector, corrupt each security-relevant field in turn and
//! require a rejection.
//!
//! Fields: the DSSE signature, payload (a byte, and the subject digest re-encoded), payload type
//! and media type; the leaf and chain certificates (a byte, and each identity value the policy
//! reads, located by its value from `cases.json`); per log entry its index, log id, kind,
//! integrated time, signed entry timestamp, body, and inclusion proof (index, root hash, tree
//! size, each hash, and the checkpoint's origin, size, root hash and log signature); each
//! RFC 3161 timestamp; and the instance thresholds (all log entries or all timestamps removed).
//! A control run first checks that the re-serialised, unmutated file still verifies, so a
//! mutant cannot pass the test by breaking the harness.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::{cases, policy_of, text};
use crate::{ArtifactDigest, BundleFormat, parse_bundles, parse_trusted_roots, verify};

/// Flips one bit of the middle byte of a base64 value.
fn flip_b64(s: &str) -> String {
    let mut bytes = STANDARD.decode(s).expect("field is base64");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    STANDARD.encode(bytes)
}

/// Adds one to a decimal number written as a string (protobuf JSON's int64).
fn bump(s: &str) -> String {
    (s.parse::<u64>().expect("field is a number") + 1).to_string()
}

/// Changes the last byte of the first and of the last occurrence of `needle` in the base64 DER
/// `s`; `None` if it does not occur.
fn flip_value_in_der(s: &str, needle: &str, last: bool) -> Option<String> {
    let mut bytes = STANDARD.decode(s).expect("certificate is base64");
    let n = needle.as_bytes();
    let positions: Vec<usize> =
        bytes.windows(n.len()).enumerate().filter(|(_, w)| *w == n).map(|(i, _)| i).collect();
    let at = if last { *positions.last()? } else { *positions.first()? };
    bytes[at + n.len() - 1] ^= 0x01;
    Some(STANDARD.encode(bytes))
}

type Mutate = Box<dyn Fn(&str) -> Option<String>>;

/// Every mutant of one bundle, named.
fn mutants(bundle: &Value, identity: &Value) -> Vec<(String, Value)> {
    let mut targets: Vec<(String, Mutate)> = vec![
        ("/dsseEnvelope/signatures/0/sig".into(), Box::new(|s| Some(flip_b64(s)))),
        ("/dsseEnvelope/payload".into(), Box::new(|s| Some(flip_b64(s)))),
        ("/dsseEnvelope/payloadType".into(), Box::new(|s| Some(format!("{s}x")))),
        ("/mediaType".into(), Box::new(|s| Some(s.replace("0.", "9.")))),
    ];
    // The subject digests, re-encoded into the payload.
    targets.push((
        "/dsseEnvelope/payload".into(),
        Box::new(|s| {
            let mut statement: Value = serde_json::from_slice(&STANDARD.decode(s).ok()?).ok()?;
            for subject in statement["subject"].as_array_mut()? {
                for (_, digest) in subject["digest"].as_object_mut()? {
                    let hex = digest.as_str()?;
                    let flipped = if hex.starts_with('0') { "1" } else { "0" };
                    *digest = Value::String(format!("{flipped}{}", &hex[1..]));
                }
            }
            Some(STANDARD.encode(serde_json::to_vec(&statement).ok()?))
        }),
    ));

    let vm = "/verificationMaterial";
    let mut certs = Vec::new();
    if bundle.pointer(&format!("{vm}/certificate/rawBytes")).is_some() {
        certs.push(format!("{vm}/certificate/rawBytes"));
    }
    if let Some(chain) =
        bundle.pointer(&format!("{vm}/x509CertificateChain/certificates")).and_then(Value::as_array)
    {
        certs.extend(
            (0..chain.len())
                .map(|i| format!("{vm}/x509CertificateChain/certificates/{i}/rawBytes")),
        );
    }
    for (i, cert) in certs.iter().enumerate() {
        targets.push((cert.clone(), Box::new(|s| Some(flip_b64(s)))));
        if i > 0 {
            continue;
        }
        // The leaf's identity values the policy reads, as cases.json states them.
        for key in [
            "san",
            "issuer",
            "source_repository_uri",
            "source_repository_owner_uri",
            "source_repository_ref",
            "source_repository_digest",
            "build_signer_digest",
            "runner_environment",
        ] {
            let Some(value) = identity.get(key).and_then(Value::as_str) else { continue };
            for last in [false, true] {
                let value = value.to_owned();
                targets.push((
                    format!("{cert} ({key} {})", if last { "last" } else { "first" }),
                    Box::new(move |s| flip_value_in_der(s, &value, last)),
                ));
            }
        }
    }

    let entries =
        bundle.pointer(&format!("{vm}/tlogEntries")).and_then(Value::as_array).map_or(0, Vec::len);
    for i in 0..entries {
        let e = format!("{vm}/tlogEntries/{i}");
        for (field, f) in [
            ("logIndex", bump as fn(&str) -> String),
            ("logId/keyId", flip_b64),
            ("integratedTime", bump),
            ("inclusionPromise/signedEntryTimestamp", flip_b64),
            ("canonicalizedBody", flip_b64),
            ("inclusionProof/logIndex", bump),
            ("inclusionProof/rootHash", flip_b64),
            ("inclusionProof/treeSize", bump),
        ] {
            targets.push((format!("{e}/{field}"), Box::new(move |s| Some(f(s)))));
        }
        targets.push((format!("{e}/kindVersion/kind"), Box::new(|s| Some(format!("{s}x")))));
        targets.push((format!("{e}/kindVersion/version"), Box::new(|s| Some(format!("{s}.1")))));
        let hashes = bundle
            .pointer(&format!("{e}/inclusionProof/hashes"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for j in 0..hashes {
            targets
                .push((format!("{e}/inclusionProof/hashes/{j}"), Box::new(|s| Some(flip_b64(s)))));
        }
        // The checkpoint (a signed note): origin, tree size, root hash, and the first signature
        // line, which is the log's own (later lines are witnesses, which nothing trusts).
        for line in 0..4 {
            targets.push((
                format!("{e}/inclusionProof/checkpoint/envelope (line {line})"),
                Box::new(move |s| {
                    let mut lines: Vec<String> = s.split('\n').map(str::to_owned).collect();
                    let sig_line = lines.iter().position(|l| l.starts_with('\u{2014}'))?;
                    let (idx, new) = match line {
                        0 => (0, format!("{}x", lines[0])),
                        1 => (1, bump(&lines[1])),
                        2 => (2, flip_b64(&lines[2])),
                        _ => {
                            let (head, sig) = lines[sig_line].rsplit_once(' ')?;
                            (sig_line, format!("{head} {}", flip_b64(sig)))
                        }
                    };
                    lines[idx] = new;
                    Some(lines.join("\n"))
                }),
            ));
        }
    }
    let stamps = bundle
        .pointer(&format!("{vm}/timestampVerificationData/rfc3161Timestamps"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    for k in 0..stamps {
        targets.push((
            format!("{vm}/timestampVerificationData/rfc3161Timestamps/{k}/signedTimestamp"),
            Box::new(|s| Some(flip_b64(s))),
        ));
    }

    let mut out = Vec::new();
    for (target, mutate) in targets {
        let pointer = target.split(" (").next().unwrap_or(&target);
        let mut b = bundle.clone();
        let Some(field) = b.pointer_mut(pointer) else { continue };
        let Some(old) = field.as_str() else { continue };
        let Some(new) = mutate(old) else { continue };
        assert_ne!(old, new, "{target}: the mutation changed nothing");
        *field = Value::String(new);
        out.push((target, b));
    }
    // Thresholds: a bundle stripped of all log entries, or of all RFC 3161 timestamps.
    if entries > 0 {
        let mut b = bundle.clone();
        b["verificationMaterial"]["tlogEntries"] = Value::Array(Vec::new());
        out.push(("all tlogEntries removed".into(), b));
    }
    if stamps > 0 {
        let mut b = bundle.clone();
        b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"] =
            Value::Array(Vec::new());
        out.push(("all rfc3161Timestamps removed".into(), b));
    }
    out
}

#[test]
fn every_mutant_of_every_verifying_vector_is_rejected() {
    let Some(cases) = cases() else { return };
    let mut accepted = Vec::new();
    let mut total = 0;
    for case in cases.iter().filter(|c| c["expected"] == "verify") {
        let id = text(case, "id");
        let Some(bundle_bytes) =
            secretvm_testkit::vector(&format!("provenance/{}", text(case, "bundle")))
        else {
            return;
        };
        let Some(root_bytes) =
            secretvm_testkit::vector(&format!("provenance/{}", text(case, "trusted_root")))
        else {
            return;
        };
        let roots = parse_trusted_roots(&root_bytes).expect("vector root parses");
        let digest: ArtifactDigest = text(case, "artifact_digest").parse().expect("digest parses");
        let policy = policy_of(case);
        let lines: Vec<Value> = crate::json::documents(&bundle_bytes, usize::MAX, usize::MAX)
            .expect("bundle file splits into documents")
            .into_iter()
            .map(|doc| serde_json::from_str(doc).expect("each bundle is JSON"))
            .collect();
        let check = |docs: &[Value]| {
            let file: String = docs.iter().map(|d| format!("{d}\n")).collect();
            parse_bundles(file.as_bytes(), BundleFormat::Jsonl)
                .and_then(|bundles| verify(&bundles, &roots, &digest, &policy))
        };
        // Control: the harness's re-serialisation must not break a good file.
        if let Err(e) = check(&lines) {
            panic!("{id}: the unmutated, re-serialised file does not verify: {e}");
        }
        for (k, bundle) in lines.iter().enumerate() {
            for (what, mutant) in mutants(bundle, &case["identity"]) {
                total += 1;
                let mut docs = lines.clone();
                docs[k] = mutant;
                if let Ok(verified) = check(&docs) {
                    accepted
                        .push(format!("{id} bundle {k}: {what} (checks {:?})", verified[0].checks));
                }
            }
        }
    }
    assert!(total > 200, "only {total} mutants: the harness found too few fields");
    assert!(
        accepted.is_empty(),
        "{} of {total} mutants verified:\n{}",
        accepted.len(),
        accepted.join("\n")
    );
}
