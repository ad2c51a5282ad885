//! `secretvm release` on what `secretvm build --from-deploy` made of the fake build directory:
//! the published names are upstream's (`<stem>-<tag>-<machine><extension>`, listed here from
//! its release workflow's naming; the images' SBOMs follow the same rule), the real
//! `sha256sum -c` checks the release's list, and every refusal leaves no release directory
//! behind.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{build_cmd, fake_build};
use crate::support::{run_err, run_ok, secretvm};

fn release_cmd(root: &Path, artifacts: &Path, tag: &str, out: &Path) -> Command {
    let mut cmd = secretvm();
    cmd.arg("release")
        .arg(artifacts)
        .args(["--tag", tag])
        .arg("--config")
        .arg(secretvm_testkit::workspace().join("yocto/secretvm.toml"))
        .arg("--out")
        .arg(out)
        .current_dir(root);
    cmd
}

/// The file names of `dir` with their bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), fs::read(e.path()).unwrap())
        })
        .collect()
}

/// The fake build directory below `root` and what `secretvm build --from-deploy` made of it in
/// `root/artifacts`; `None` when the vectors are missing.
fn built(root: &Path) -> Option<(PathBuf, PathBuf)> {
    let build = fake_build(root)?;
    let artifacts = root.join("artifacts");
    run_ok(&mut build_cmd(&build, &artifacts));
    Some((build, artifacts))
}

#[test]
fn a_release_has_upstreams_names_and_sha256sum_checks_it() {
    let root = tempfile::tempdir().unwrap();
    let Some((_, artifacts)) = built(root.path()) else { return };
    let out = root.path().join("release");
    let stdout = run_ok(&mut release_cmd(root.path(), &artifacts, "v1.2.3-rc.1", &out)).stdout;
    assert!(String::from_utf8(stdout).unwrap().starts_with("released 29 files ("));

    let release = contents(&out);
    let mut want = vec!["manifest.json".to_owned(), "sha256sum.txt".to_owned()];
    for machine in ["tdx", "sev"] {
        want.push(format!("bzImage-v1.2.3-rc.1-{machine}"));
        want.push(format!("initramfs-v1.2.3-rc.1-{machine}.cpio.gz"));
        want.push(format!("ovmf-v1.2.3-rc.1-{machine}.fd"));
        want.push(format!("initramfs-v1.2.3-rc.1-{machine}.spdx.json"));
        for variant in ["dev", "prod", "gpu-dev", "gpu-prod"] {
            want.push(format!("rootfs-{variant}-v1.2.3-rc.1-{machine}.iso"));
            want.push(format!("rootfs-{variant}-v1.2.3-rc.1-{machine}.spdx.json"));
        }
    }
    want.push("initramfs-v1.2.3-rc.1-gcp-tdx.spdx.json".to_owned());
    for variant in ["dev", "prod"] {
        want.push(format!("rootfs-{variant}-v1.2.3-rc.1-gcp-tdx.wic.tar.gz"));
        want.push(format!("rootfs-{variant}-v1.2.3-rc.1-gcp-tdx.spdx.json"));
    }
    want.sort();
    assert_eq!(release.keys().cloned().collect::<Vec<_>>(), want);
    // The bytes are the build's, and the manifest is the build's own.
    let build_file = |rel: &str| fs::read(artifacts.join(rel)).unwrap();
    assert!(
        release["rootfs-gpu-prod-v1.2.3-rc.1-sev.iso"] == build_file("sev/rootfs-gpu-prod.iso")
    );
    assert!(release["bzImage-v1.2.3-rc.1-tdx"] == build_file("tdx/bzImage"));
    assert!(
        release["rootfs-dev-v1.2.3-rc.1-gcp-tdx.wic.tar.gz"]
            == build_file("gcp-tdx/rootfs-dev.wic.tar.gz")
    );
    assert!(
        release["rootfs-prod-v1.2.3-rc.1-gcp-tdx.spdx.json"]
            == build_file("gcp-tdx/rootfs-prod.spdx.json")
    );
    assert!(release["manifest.json"] == build_file("manifest.json"));

    let checked = run_ok(
        Command::new("sha256sum").args(["-c", "--strict", "sha256sum.txt"]).current_dir(&out),
    );
    let checked = String::from_utf8(checked.stdout).unwrap();
    assert_eq!(checked.lines().filter(|l| l.ends_with(": OK")).count(), 29, "{checked}");

    // The same build and tag give the same release.
    let again = root.path().join("again");
    run_ok(&mut release_cmd(root.path(), &artifacts, "v1.2.3-rc.1", &again));
    assert!(contents(&again) == release, "two releases of one build differ");
}

#[test]
fn a_release_refuses_a_changed_file_a_partial_build_a_bad_tag_and_an_existing_directory() {
    let root = tempfile::tempdir().unwrap();
    let Some((build, artifacts)) = built(root.path()) else { return };
    let out = root.path().join("release");
    let no_release_left = |what: &str| {
        assert!(!out.exists(), "{what}: a release directory was left");
        let staged: Vec<_> = fs::read_dir(root.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(".secretvm-release-"))
            .collect();
        assert!(staged.is_empty(), "{what}: {staged:?} left");
    };

    let stderr = run_err(&mut release_cmd(root.path(), &artifacts, "v1/../x", &out));
    assert!(stderr.contains("the tag \"v1/../x\" cannot name release files"), "{stderr}");
    no_release_left("bad tag");

    // An ISO changed after the build: listed digest and found digest are both named.
    let iso = artifacts.join("sev/rootfs-prod.iso");
    let listed = fs::read_to_string(artifacts.join("sha256sum.txt")).unwrap();
    let listed =
        listed.lines().find(|l| l.ends_with("  sev/rootfs-prod.iso")).unwrap()[..64].to_owned();
    let original = fs::read(&iso).unwrap();
    let mut changed = original.clone();
    changed[40000] ^= 1;
    fs::write(&iso, &changed).unwrap();
    let found = String::from_utf8(run_ok(Command::new("sha256sum").arg(&iso)).stdout).unwrap();
    let found = &found[..64];
    let stderr = run_err(&mut release_cmd(root.path(), &artifacts, "v1.0.0", &out));
    assert!(
        stderr.contains(&format!(
            "sev/rootfs-prod.iso has SHA-256 {found}, but the build's sha256sum.txt lists {listed}"
        )),
        "{stderr}"
    );
    no_release_left("changed file");
    fs::write(&iso, &original).unwrap();

    fs::create_dir(&out).unwrap();
    let stderr = run_err(&mut release_cmd(root.path(), &artifacts, "v1.0.0", &out));
    assert!(stderr.contains("exists; a release goes into a new directory"), "{stderr}");
    fs::remove_dir(&out).unwrap();

    let partial = root.path().join("partial");
    run_ok(build_cmd(&build, &partial).args(["--machine", "tdx"]));
    let stderr = run_err(&mut release_cmd(root.path(), &partial, "v1.0.0", &out));
    assert!(stderr.contains("says \"complete\": false"), "{stderr}");
    no_release_left("partial build");

    run_ok(&mut release_cmd(root.path(), &artifacts, "v1.0.0", &out));
}

/// The shell command of `workflow` (not a comment) that contains `needle`, its continuation
/// lines joined, split into words, with the runner's variables `vars` put in and the quotes
/// taken out (no quoted word of the workflow holds a space).
fn workflow_command(workflow: &str, needle: &str, vars: &[(&str, &str)]) -> Vec<String> {
    let mut lines =
        workflow.lines().map(str::trim).skip_while(|l| l.starts_with('#') || !l.contains(needle));
    let mut command = String::new();
    for line in lines.by_ref() {
        match line.strip_suffix('\\') {
            Some(part) => command.push_str(part),
            None => {
                command.push_str(line);
                break;
            }
        }
    }
    assert!(!command.is_empty(), "the release workflow runs no `{needle}`");
    // Longer names first: $GITHUB_REF is a prefix of $GITHUB_REF_NAME.
    let mut vars = vars.to_vec();
    vars.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    for (name, value) in vars {
        command = command.replace(&format!("${name}"), value);
    }
    command.split_whitespace().map(|w| w.replace('"', "")).collect()
}

/// The release workflow's own `secretvm release` and `secretvm verify release` commands, run as
/// the workflow runs them (from the workspace, on what the build wrote to `artifacts/`): the
/// first lays out the release it attests, the second checks every published file against the
/// bundle, which it finds beside them and does not take for a published file.
#[test]
fn the_release_workflows_commands_lay_out_and_check_the_build() {
    let workflow = secretvm_testkit::workspace().join(".github/workflows/release.yml");
    let text = fs::read_to_string(&workflow).unwrap();
    assert!(text.contains("subject-path: release/*"), "the workflow attests another directory");
    let root = tempfile::tempdir().unwrap();
    let runner_temp = root.path().join("runner-temp");
    let runner_temp_path = runner_temp.display().to_string();
    let vars = [
        ("GITHUB_REF_NAME", "v9.8.7"),
        ("GITHUB_REF", "refs/tags/v9.8.7"),
        ("GITHUB_REPOSITORY", "scrtlabs/secretvm"),
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("RUNNER_TEMP", runner_temp_path.as_str()),
    ];
    let release = workflow_command(&text, "secretvm release", &vars);
    let verify = workflow_command(&text, "secretvm verify release", &vars);
    for words in [&release, &verify] {
        assert_eq!(words[0], "target/release/secretvm", "{words:?}");
    }

    let Some(build) = fake_build(root.path()) else { return };
    let Some(vectors) = crate::support::vectors() else { return };
    let workspace = root.path().join("workspace");
    fs::create_dir_all(workspace.join("yocto")).unwrap();
    fs::copy(
        secretvm_testkit::workspace().join("yocto/secretvm.toml"),
        workspace.join("yocto/secretvm.toml"),
    )
    .unwrap();
    run_ok(&mut build_cmd(&build, &workspace.join("artifacts")));
    run_ok(secretvm().args(&release[1..]).current_dir(&workspace));
    let published = contents(&workspace.join("release"));
    assert_eq!(published.len(), 31, "{:?}", published.keys());
    assert!(published.contains_key("rootfs-prod-v9.8.7-tdx.iso"), "{:?}", published.keys());

    // The workflow's `cp "$BUNDLE"` and `gh attestation trusted-root`, with a real bundle of
    // someone else's artifact: every published file must be checked and fail, the bundle not.
    let provenance = vectors.join("provenance");
    fs::copy(
        provenance.join("bundles/reusable-workflow-attestation.sigstore.json"),
        workspace.join("release/provenance-v9.8.7.sigstore.json"),
    )
    .unwrap();
    fs::create_dir_all(&runner_temp).unwrap();
    fs::copy(provenance.join("roots/trusted_root.jsonl"), runner_temp.join("trusted_root.jsonl"))
        .unwrap();
    let out = secretvm().args(&verify[1..]).current_dir(&workspace).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let failed: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("secretvm: release/")?.split(": not verified: ").next())
        .collect();
    let mut failed = failed;
    failed.sort_unstable();
    assert_eq!(failed, published.keys().map(String::as_str).collect::<Vec<_>>(), "{stderr}");
}
