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
    run_ok(lock_cmd(&lock, &["--update"]).args(image_args));
    let text = fs::read_to_string(&lock).unwrap();
    assert!(text.contains(&format!("builder_image = \"{id}\"\n")), "{text}");
    let out = run_ok(lock_cmd(&lock, &["--check"]).args(image_args));
    assert!(String::from_utf8_lossy(&out.stdout).contains("agrees with"));
}
