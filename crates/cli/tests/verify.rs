//! `secretvm verify provenance` against the shared provenance vectors: every case of
//! `cases.json` run through the binary with its policy as gh flags, checking the exit code, and
//! the JSON output's verdict and failing check for a few.

use serde_json::Value;

use crate::support::{run_err, run_ok, secretvm, vectors};

fn cases() -> Option<(std::path::PathBuf, Vec<Value>)> {
    let dir = vectors()?.join("provenance");
    let doc: Value = serde_json::from_slice(&std::fs::read(dir.join("cases.json")).ok()?).ok()?;
    Some((dir, doc["cases"].as_array()?.clone()))
}

/// The command for a case: its artifact (the file when published, else the digest), bundle,
/// root and policy; policy keys in cases.json are gh's flag names.
fn command(dir: &std::path::Path, case: &Value) -> std::process::Command {
    let mut cmd = secretvm();
    cmd.current_dir(dir).args(["verify", "provenance"]);
    match case["artifact"].as_str() {
        Some(file) => cmd.arg(file),
        None => cmd.arg(case["artifact_digest"].as_str().expect("digest")),
    };
    cmd.args(["--digest-alg", case["digest_alg"].as_str().expect("digest_alg")]);
    cmd.args(["--bundle", case["bundle"].as_str().expect("bundle")]);
    cmd.args(["--custom-trusted-root", case["trusted_root"].as_str().expect("root")]);
    let policy = case["policy"].as_object().expect("policy");
    if !policy.contains_key("repo") && !policy.contains_key("owner") {
        // A crypto-layer case: gh needs some --owner; the case fails before policy.
        cmd.args(["--owner", "no-owner-given"]);
    }
    for (key, value) in policy {
        match value {
            Value::Bool(true) => cmd.arg(format!("--{key}")),
            Value::String(s) => cmd.arg(format!("--{key}")).arg(s),
            other => panic!("unexpected policy value {other}"),
        };
    }
    cmd
}

#[test]
fn every_vector_case_exits_with_its_verdict() {
    let Some((dir, cases)) = cases() else { return };
    assert_eq!(cases.len(), 24);
    for case in &cases {
        let mut cmd = command(&dir, case);
        match case["expected"].as_str() {
            Some("verify") => {
                let out = run_ok(&mut cmd);
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(stdout.starts_with("verified "), "{}: {stdout}", case["id"]);
            }
            Some("fail") => {
                let out = cmd.output().expect("runs");
                assert_eq!(out.status.code(), Some(1), "{}: {out:?}", case["id"]);
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(
                    stderr.contains("not verified") || stderr.contains("cannot load"),
                    "{}: {stderr}",
                    case["id"]
                );
            }
            other => panic!("unknown verdict {other:?}"),
        }
    }
}

#[test]
fn json_output_names_the_failed_check() {
    let Some((dir, cases)) = cases() else { return };
    for (id, check) in [
        ("reusable-workflow-wrong-source-ref", "source ref"),
        ("foundry-deny-self-hosted", "runner environment"),
        ("conformance-dsse-invalid-sig", "signature"),
    ] {
        let case = cases.iter().find(|c| c["id"] == id).expect("case exists");
        let out = command(&dir, case).args(["--format", "json"]).output().expect("runs");
        assert_eq!(out.status.code(), Some(1), "{id}");
        let report: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
        assert_eq!(report[0]["verified"], false, "{id}");
        assert_eq!(report[0]["check"], check, "{id}: {report}");
    }
    let case = cases.iter().find(|c| c["id"] == "npm-two-bundles-sha512").expect("case exists");
    let out = run_ok(command(&dir, case).args(["--format", "json"]));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(report[0]["verified"], true);
    assert_eq!(report[0]["results"].as_array().map(Vec::len), Some(2), "two bundles, two results");
    assert_eq!(report[0]["results"][0]["instance"], "public-good");
}

#[test]
fn usage_errors_exit_2() {
    // Neither --repo nor --owner.
    let out = secretvm()
        .args([
            "verify",
            "provenance",
            "x",
            "--bundle",
            "b.json",
            "--custom-trusted-root",
            "r.json",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    // Two signer flags.
    let err = run_err(secretvm().args([
        "verify",
        "provenance",
        "x",
        "--bundle",
        "b",
        "--custom-trusted-root",
        "r",
        "--owner",
        "o",
        "--cert-identity",
        "a",
        "--signer-repo",
        "o/r",
    ]));
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn verify_release_checks_every_file_of_a_directory() {
    let Some((dir, cases)) = cases() else { return };
    let case = cases.iter().find(|c| c["id"] == "npm-two-bundles-sha512").expect("case exists");
    let release = tempfile::tempdir().expect("temp dir");
    let artifact = case["artifact"].as_str().expect("artifact file");
    std::fs::copy(dir.join(artifact), release.path().join("sigstore-js-2.1.0.tgz")).expect("copy");
    // The bundle inside the release directory is not itself an artifact.
    let bundle = release.path().join("provenance.jsonl");
    std::fs::copy(dir.join(case["bundle"].as_str().expect("bundle")), &bundle).expect("copy");
    let command = |extra: &[&str]| {
        let mut cmd = secretvm();
        cmd.args(["verify", "release"]).arg(release.path()).arg("--bundle").arg(&bundle);
        cmd.arg("--custom-trusted-root")
            .arg(dir.join(case["trusted_root"].as_str().expect("root")));
        cmd.args(["--repo", "sigstore/sigstore-js", "--digest-alg", "sha512"]).args(extra);
        cmd
    };
    let out = run_ok(&mut command(&[]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("verified ") && stdout.contains("sigstore-js-2.1.0.tgz"),
        "{stdout}"
    );

    // A file that is no subject fails the release, and is named.
    std::fs::write(release.path().join("extra.txt"), b"not in the statement").expect("write");
    let out = command(&["--format", "json"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let entries = report.as_array().expect("array");
    assert_eq!(entries.len(), 2);
    let extra =
        entries.iter().find(|e| e["artifact"].as_str().is_some_and(|a| a.ends_with("extra.txt")));
    assert_eq!(extra.map(|e| &e["check"]), Some(&Value::from("subject digest")), "{report}");
    let tgz = entries.iter().find(|e| e["artifact"].as_str().is_some_and(|a| a.ends_with(".tgz")));
    assert_eq!(tgz.map(|e| &e["verified"]), Some(&Value::Bool(true)), "{report}");

    // A subdirectory is not passed over: it fails the release too.
    std::fs::remove_file(release.path().join("extra.txt")).expect("remove");
    std::fs::create_dir(release.path().join("sub")).expect("mkdir");
    let err = run_err(&mut command(&[]));
    assert!(err.contains("not a regular file"), "{err}");
}
