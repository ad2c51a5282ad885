//! `secretvm lock --update | --check` on the real config: the lock records the config's
//! commits and the given SRCREVs canonically, refuses values that are not commits, and
//! `--check` names every disagreement. With Docker and the builder image of the build-flow
//! test, the recorded image id is the one `docker image inspect` prints.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{run_err, run_ok, secretvm, tool_on_path};

const KERNEL_MACHINE: &str =
    "linux-yocto-dev:SRCREV_machine=0123456789abcdef0123456789abcdef01234567";

fn lock_cmd(lock: &Path, args: &[&str]) -> Command {
    let mut cmd = secretvm();
    cmd.arg("lock").args(args).arg("--lock").arg(lock).current_dir(secretvm_testkit::workspace());
    cmd
}

#[test]
fn update_records_the_config_and_check_names_each_disagreement() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("secretvm.lock");
    run_ok(&mut lock_cmd(&lock, &["--update", "--engine", "native", "--srcrev", KERNEL_MACHINE]));
    let text = fs::read_to_string(&lock).unwrap();
    // The commits are the config's (read here with the toml crate, not our parser).
    let config: toml::Value = toml::from_str(
        &fs::read_to_string(secretvm_testkit::workspace().join("yocto/secretvm.toml")).unwrap(),
    )
    .unwrap();
    for repo in config["repo"].as_array().unwrap() {
        let (name, commit) = (repo["name"].as_str().unwrap(), repo["commit"].as_str().unwrap());
        assert!(text.contains(&format!("name = \"{name}\"\ncommit = \"{commit}\"\n")), "{text}");
    }
    assert!(text.contains(
        "[[srcrev]]\nrecipe = \"linux-yocto-dev\"\nvariable = \"SRCREV_machine\"\n\
         commit = \"0123456789abcdef0123456789abcdef01234567\"\n"
    ));
    // Canonical: a second update keeps the SRCREV and writes the same bytes.
    run_ok(&mut lock_cmd(&lock, &["--update", "--engine", "native"]));
    assert_eq!(fs::read_to_string(&lock).unwrap(), text);

    // Not a commit, or not a SRCREV variable: refused, and the lock is left as it was.
    let err = run_err(&mut lock_cmd(
        &lock,
        &["--update", "--engine", "native", "--srcrev", "fluent-bit:SRCREV=v${PV}"],
    ));
    assert!(err.contains("v${PV}"), "{err}");
    let err =
        run_err(&mut lock_cmd(&lock, &["--update", "--engine", "native", "--srcrev", "a:PV=1"]));
    assert!(err.contains("RECIPE:VARIABLE=COMMIT"), "{err}");
    assert_eq!(fs::read_to_string(&lock).unwrap(), text);

    // No builder image recorded yet: --check says so.
    let err = run_err(&mut lock_cmd(&lock, &["--check", "--engine", "native"]));
    assert!(err.contains("the lock records no builder image digest"), "{err}");

    // A lock whose poky commit differs from the config's.
    let poky = config["repo"][0]["commit"].as_str().unwrap();
    let other = "1111111111111111111111111111111111111111";
    fs::write(&lock, text.replacen(poky, other, 1)).unwrap();
    let err = run_err(&mut lock_cmd(&lock, &["--check", "--engine", "native"]));
    assert!(err.contains(&format!("\"poky\" is at {poky} in the config but {other} in the lock")));

    let err = run_err(&mut lock_cmd(&dir.path().join("none.lock"), &["--check"]));
    assert!(err.contains("create it with `--update`"), "{err}");
}

#[test]
fn update_records_the_local_builder_image_id() {
    if !crate::support::is_root() {
        secretvm_testkit::skip("the builder image of the engine tests is made as root");
        return;
    }
    let Some(docker) = tool_on_path("docker") else { return };
    let Some(base) = secretvm_testkit::engine_test_base("docker") else { return };
    let dockerfile =
        fs::read(secretvm_testkit::workspace().join("yocto/docker/Dockerfile")).unwrap();
    let tag =
        secretvm_yocto::runner::image::tag(&dockerfile, &[("BASE_IMAGE".into(), base.into())]);
    let exists = Command::new(&docker).args(["image", "inspect", &tag]).output().unwrap();
    if !exists.status.success() {
        // Build it the way `secretvm build` does.
        let host = secretvm_yocto::runner::Host::from_env();
        let log = tempfile::NamedTempFile::new().unwrap();
        secretvm_yocto::runner::image::ensure(
            secretvm_yocto::runner::Engine::Docker,
            &host,
            &dockerfile,
            &[("BASE_IMAGE".into(), base.into())],
            &[],
            log.path(),
            &mut |_| {},
        )
        .unwrap();
    }
    let inspect = Command::new(&docker)
        .args(["image", "inspect", "--format", "{{.Id}}", &tag])
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&inspect.stdout).trim().to_owned();
    assert!(id.starts_with("sha256:"), "{id}");

    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("secretvm.lock");
    let image_args = ["--engine", "docker", "--base-image", base];
    // With both floating kernel SRCREVs pinned, so that --check has nothing else to report.
    let meta = "linux-yocto-dev:SRCREV_meta=89abcdef0123456789abcdef0123456789abcdef";
    run_ok(
        lock_cmd(&lock, &["--update", "--srcrev", KERNEL_MACHINE, "--srcrev", meta])
            .args(image_args),
    );
    let text = fs::read_to_string(&lock).unwrap();
    assert!(text.contains(&format!("builder_image = \"{id}\"\n")), "{text}");
    let out = run_ok(lock_cmd(&lock, &["--check"]).args(image_args));
    assert!(String::from_utf8_lossy(&out.stdout).contains("agrees with"));
}

/// Runs git in `dir` with fixed identities and dates; returns its standard output.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "secretvm")
        .env("GIT_AUTHOR_EMAIL", "secretvm@invalid")
        .env("GIT_COMMITTER_NAME", "secretvm")
        .env("GIT_COMMITTER_EMAIL", "secretvm@invalid")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A repository whose `branch` has two commits (the head is the second); returns the head.
fn repo_with_branch(dir: &Path, branch: &str) -> String {
    fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    for n in ["one", "two"] {
        fs::write(dir.join("file"), n).unwrap();
        git(dir, &["add", "file"]);
        git(dir, &["-c", "commit.gpgsign=false", "commit", "-q", "-m", n]);
    }
    git(dir, &["branch", branch]);
    git(dir, &["rev-parse", branch]).trim().to_owned()
}

#[test]
fn resolve_pins_each_floating_srcrev_to_its_branch_head() {
    if tool_on_path("git").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kernel = repo_with_branch(&dir.path().join("linux-yocto-dev"), "v6.9/standard/base");
    let cache = repo_with_branch(&dir.path().join("yocto-kernel-cache"), "master");
    // The committed config with its floating sources moved to the local repositories.
    let workspace = secretvm_testkit::workspace();
    let text = fs::read_to_string(workspace.join("yocto/secretvm.toml")).unwrap();
    let local = |name: &str| format!("file://{}", dir.path().join(name).display());
    let moved = text
        .replace("https://git.yoctoproject.org/linux-yocto-dev.git", &local("linux-yocto-dev"))
        .replace("https://git.yoctoproject.org/yocto-kernel-cache", &local("yocto-kernel-cache"));
    assert_ne!(moved, text, "the committed config has no floating kernel sources");
    let config = dir.path().join("secretvm.toml");
    fs::write(&config, &moved).unwrap();
    let lock = dir.path().join("secretvm.lock");
    let cfg = config.to_str().unwrap();

    // Before: --check names both as unpinned.
    run_ok(&mut lock_cmd(&lock, &["--update", "--engine", "native", "--config", cfg]));
    let err = run_err(&mut lock_cmd(&lock, &["--check", "--engine", "native", "--config", cfg]));
    for var in ["SRCREV_machine", "SRCREV_meta"] {
        assert!(err.contains(&format!("linux-yocto-dev:{var} floats in the config")), "{err}");
    }

    // --resolve records each branch's head, as `git rev-parse` gives it.
    let out = run_ok(&mut lock_cmd(
        &lock,
        &["--update", "--resolve", "--engine", "native", "--config", cfg],
    ));
    let text = fs::read_to_string(&lock).unwrap();
    for (var, commit) in [("SRCREV_machine", &kernel), ("SRCREV_meta", &cache)] {
        assert!(
            text.contains(&format!(
                "recipe = \"linux-yocto-dev\"\nvariable = \"{var}\"\ncommit = \"{commit}\"\n"
            )),
            "{text}"
        );
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("head of v6.9/standard/base"));
    let err = run_err(&mut lock_cmd(&lock, &["--check", "--engine", "native", "--config", cfg]));
    assert!(!err.contains("floats in the config"), "{err}");
    assert!(err.contains("no builder image digest"), "{err}");

    // --srcrev wins over the resolved head.
    let pinned = "0123456789abcdef0123456789abcdef01234567";
    run_ok(&mut lock_cmd(
        &lock,
        &[
            "--update",
            "--resolve",
            "--engine",
            "native",
            "--config",
            cfg,
            "--srcrev",
            &format!("linux-yocto-dev:SRCREV_meta={pinned}"),
        ],
    ));
    assert!(fs::read_to_string(&lock).unwrap().contains(pinned));

    // A branch the server does not have stops the update, naming it; the lock stays.
    let before = fs::read_to_string(&lock).unwrap();
    fs::write(&config, moved.replace("branch = \"master\"", "branch = \"gone\"")).unwrap();
    let err = run_err(&mut lock_cmd(
        &lock,
        &["--update", "--resolve", "--engine", "native", "--config", cfg],
    ));
    assert!(err.contains("yocto-kernel-cache has no branch \"gone\""), "{err}");
    assert_eq!(fs::read_to_string(&lock).unwrap(), before);
}
