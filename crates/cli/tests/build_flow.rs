//! `secretvm build` end to end through the real runner and Docker, with a stand-in for poky
//! and bitbake (the real layers live on GitHub, which the test machines cannot reach).
//!
//! The stand-in poky is a local git repository checked out by the real checkout code at its
//! pinned commit: `oe-init-build-env` enters the build directory, and `bitbake` records how it
//! was called (arguments, user, directory, environment), prints knotty-style task lines, and
//! deploys the launch vectors, a root file system cpio and the images' SBOMs (each listing its
//! image's file and SHA-256, as poky's do) the way bitbake does (timestamped files behind
//! stable links). The builder image is built from our real Dockerfile on the
//! debootstrapped test base (`--base-image`). What is checked: the preflight passes and the
//! build runs as the named user, first fetching (`--runall=fetch`) with Docker's network,
//! then building with `BB_NO_NETWORK=1` and only loopback (the interfaces the kernel lists in
//! the container); `build/conf/` is regenerated (a stale file disappears) with
//! our multiconfig and BBLAYERS; bitbake gets the config's targets in order; the progress
//! display and the raw log carry bitbake's lines; the artifacts equal what
//! `secretvm build --from-deploy` makes from the same build directory, and pass the real
//! `sha256sum -c`. Then the second build of a reproducibility check (`--build-dir build-repro
//! --from-scratch`, with a config whose shared state is on the network): it runs in its own
//! directory with only loopback and no sstate or hash server in `auto.conf`, `secretvm compare`
//! finds its artifacts identical to the first build's, and it refuses to run again into the
//! same directory. Last, a failing fetch run and a failing build run each end with the hint
//! that fits them.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::support::{run_ok, secretvm, tool_on_path, vectors};

/// The stand-in for `bitbake`: bash, run inside the builder by `oe-init-build-env`'s caller.
const STUB_BITBAKE: &str = r#"#!/bin/bash
# Stand-in for bitbake in secretvm's end-to-end test (see crates/cli/tests/build_flow.rs).
set -eu
# One record per run: the fetch run (`--runall=fetch`), then the build.
run=build
task=do_build
if [ "${1:-}" = --runall=fetch ]; then
    run=fetch
    task=do_fetch
fi
rec="$BUILDDIR/stub-record/$run"
mkdir -p "$rec"
printf '%s\n' "$@" > "$rec/args"
id -u > "$rec/uid"
getent passwd "$(id -u)" > "$rec/account" || true
pwd > "$rec/pwd"
env | sort > "$rec/env"
# The network interfaces the kernel gives this run.
ls /sys/class/net > "$rec/net"
inputs="$OEROOT/../../stub-inputs"
if [ -e "$OEROOT/../../stub-fail-$run" ]; then
    echo "ERROR: Task (mc:tdx:/stub/stub.bb:$task) failed with exit code '1'"
    exit 1
fi
echo "Parsing of 3 .bb files complete (0 cached, 3 parsed). 3 targets, 0 skipped, 0 masked, 0 errors."
[ "$run" = fetch ] && shift
n=$#
i=0
for target in "$@"; do
    i=$((i + 1))
    echo "NOTE: Running task $i of $n ($target:$task)"
done
if [ "$run" = fetch ]; then
    echo "NOTE: Tasks Summary: Attempted $n tasks of which 0 didn't need to be rerun and all succeeded."
    exit 0
fi
echo "WARNING: stand-in bitbake: nothing was compiled"
stamp=20261125120000
deploy="$BUILDDIR/tmp-tdx-glibc/deploy/images/secret-vm-tdx"
mkdir -p "$deploy"
put() { # put <input file> <stable name> <timestamped name>
    cp "$inputs/$1" "$deploy/$3"
    ln -sfn "$3" "$deploy/$2"
}
put bzImage bzImage "bzImage--6.9-r0-secret-vm-tdx-$stamp.bin"
put ovmf.fd ovmf.fd "ovmf-$stamp.fd"
put initramfs.cpio.gz secret-vm-initramfs-secret-vm-tdx.rootfs.cpio.gz \
    "secret-vm-initramfs-secret-vm-tdx.rootfs-$stamp.cpio.gz"
for v in dev prod gpu-dev gpu-prod; do
    put rootfs.cpio "secret-vm-rootfs-$v-secret-vm-tdx.rootfs.cpio" \
        "secret-vm-rootfs-$v-secret-vm-tdx.rootfs-$stamp.cpio"
done
sbom() { # sbom <IMAGE_LINK_NAME> <image type>: the image's SBOM, listing its file and SHA-256
    file="$1-$stamp.$2"
    sha256=$(sha256sum "$deploy/$file" | cut -d' ' -f1)
    sed -e "s/IMAGE_FILE_NAME/$file/g" -e "s/0\{64\}/$sha256/" "$inputs/image-sbom.spdx.json" \
        > "$deploy/$1-$stamp.spdx.json"
    ln -sfn "$1-$stamp.spdx.json" "$deploy/$1.spdx.json"
}
sbom secret-vm-initramfs-secret-vm-tdx.rootfs cpio.gz
for v in dev prod gpu-dev gpu-prod; do
    sbom "secret-vm-rootfs-$v-secret-vm-tdx.rootfs" cpio
done
echo "NOTE: Tasks Summary: Attempted $n tasks of which 0 didn't need to be rerun and all succeeded."
"#;

/// Runs `script` with `sh -c` in `dir`, asserting success; returns stdout.
fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).current_dir(dir).output().expect("sh runs");
    assert!(
        out.status.success(),
        "{script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes the stand-in poky repository (bare, as a remote) and returns its commit.
fn stub_poky(root: &Path) -> String {
    let src = root.join("poky-src");
    let templates = src.join("meta-poky/conf/templates/default");
    fs::create_dir_all(&templates).unwrap();
    fs::create_dir_all(src.join("meta/conf")).unwrap();
    // With BitBake's own library, for the runner's task-network check (its generated parser
    // table included, which poky instead makes at run time); bytecode ignored, as poky does.
    secretvm_testkit::stand_in_poky(&src, STUB_BITBAKE).expect("checked by docker_stub_workspace");
    fs::write(src.join(".gitignore"), "*.pyc\n").unwrap();
    fs::write(
        templates.join("local.conf.sample"),
        "# stand-in local.conf\nMACHINE ??= \"qemux86-64\"\n",
    )
    .unwrap();
    fs::write(
        templates.join("bblayers.conf.sample"),
        "POKY_BBLAYERS_CONF_VERSION = \"2\"\nBBPATH = \"${TOPDIR}\"\nBBFILES ?= \"\"\n\
         BBLAYERS ?= \" \\\n  ##OEROOT##/meta \\\n  \"\n",
    )
    .unwrap();
    sh(
        &src,
        "git init -q -b scarthgap . && git add -A && \
         GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z \
         git -c user.name=test -c user.email=test@example.org commit -q -m 'stand-in poky' && \
         git clone -q --bare . ../poky.git && \
         git -C ../poky.git config uploadpack.allowReachableSHA1InWant true",
    );
    sh(&src, "git rev-parse HEAD").trim().to_owned()
}

/// A one-machine config in the shape of `yocto/secretvm.toml`, with poky from `poky_url`.
fn config(poky_url: &str, commit: &str) -> String {
    let real = fs::read_to_string(secretvm_testkit::workspace().join("yocto/secretvm.toml"))
        .expect("yocto/secretvm.toml");
    // Line-anchored: the file's comments mention the table names too.
    let container =
        real.split("\n[container]\n").nth(1).and_then(|c| c.split("\n[[machine]]\n").next());
    let tdx = real.split("\n[[machine]]\n").nth(1).expect("the tdx machine comes first");
    format!(
        "version = 1\ndistro = \"secret-vm\"\nworkdir = \"/secret-vm-build\"\n\n\
         [[repo]]\nname = \"poky\"\nurl = \"{poky_url}\"\nbranch = \"scarthgap\"\n\
         commit = \"{commit}\"\npath = \"yocto/poky\"\n\n\
         [[layer]]\nrepo = \"poky\"\npath = \"meta\"\n\n\
         [container]\n{}\n[[machine]]\n{tdx}",
        container.expect("a [container] table before the machines")
    )
}

/// A workspace with the one-machine config, our Dockerfile and the stand-in poky (as a git
/// remote under `root`), and the inputs the stand-in bitbake deploys.
fn stub_workspace(root: &Path, vectors: &Path) -> std::path::PathBuf {
    let commit = stub_poky(root);
    let ws = root.join("ws");
    fs::create_dir_all(ws.join("yocto/docker")).unwrap();
    let url = format!("file://{}", root.join("poky.git").display());
    fs::write(ws.join("yocto/secretvm.toml"), config(&url, &commit)).unwrap();
    fs::copy(
        secretvm_testkit::workspace().join("yocto/docker/Dockerfile"),
        ws.join("yocto/docker/Dockerfile"),
    )
    .unwrap();
    let inputs = ws.join("stub-inputs");
    fs::create_dir_all(&inputs).unwrap();
    let measure = vectors.join("measure/inputs");
    for (from, to) in [
        ("firmware/OVMF.inteltdx.ms.fd", "ovmf.fd"),
        ("kernel/vmlinuz-6.12.117+deb13-cloud-amd64", "bzImage"),
        ("initrd/initramfs.cpio.gz", "initramfs.cpio.gz"),
    ] {
        fs::copy(measure.join(from), inputs.join(to)).unwrap();
    }
    // What the stand-in makes each image's SBOM from (see secretvm_testkit::image_sbom).
    fs::copy(
        secretvm_testkit::workspace().join("crates/yocto/tests/fixtures/image-sbom.spdx.json"),
        inputs.join("image-sbom.spdx.json"),
    )
    .unwrap();
    let tree = root.join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/os-release"), "ID=secret-vm\n").unwrap();
    crate::support::pack_cpio(&tree, &inputs.join("rootfs.cpio"));
    ws
}

/// What both tests need: root (they run the builder as uid 1000), the vectors, docker, git
/// and the engine test base; then a [`stub_workspace`] in a new temporary directory. `None`
/// (after saying why) when something is missing.
fn docker_stub_workspace() -> Option<(tempfile::TempDir, std::path::PathBuf, &'static str)> {
    if !crate::support::is_root() {
        secretvm_testkit::skip("the build-flow tests run as root and run the builder as uid 1000");
        return None;
    }
    let vectors = vectors()?;
    tool_on_path("docker")?;
    tool_on_path("git")?;
    secretvm_testkit::tool_from_env("SECRETVM_BITBAKE_PYTHON")?;
    let base = secretvm_testkit::engine_test_base("docker")?;
    let root = tempfile::tempdir().unwrap();
    let ws = stub_workspace(root.path(), &vectors);
    Some((root, ws, base))
}

#[test]
fn build_runs_bitbake_in_the_builder_and_collects_what_it_deployed() {
    let Some((root, ws, base)) = docker_stub_workspace() else { return };
    // What an earlier run left in conf/ must not survive.
    fs::create_dir_all(ws.join("build/conf")).unwrap();
    fs::write(ws.join("build/conf/stale.conf"), "DISTRO = \"poky\"\n").unwrap();
    sh(&ws, "chown -R 1000:1000 .");

    let out = run_ok(
        secretvm()
            .args(["build", "--engine", "docker", "--user", "1000:1000", "--min-free-gb", "0"])
            .args(["--base-image", base, "--git-revision", "feedc0de"])
            .current_dir(&ws),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);

    // bitbake ran in the builder as the build user, in the build directory, with our targets:
    // first fetching with the network, then building with none.
    let rec = ws.join("build/stub-record");
    let read = |run: &str, name: &str| fs::read_to_string(rec.join(run).join(name)).unwrap();
    let real =
        fs::read_to_string(secretvm_testkit::workspace().join("yocto/secretvm.toml")).unwrap();
    let config = secretvm_yocto::config::parse("secretvm.toml", &real).unwrap();
    let want: Vec<String> =
        config.machine("tdx").unwrap().targets().iter().map(|t| format!("mc:tdx:{t}")).collect();
    for run in ["fetch", "build"] {
        assert_eq!(read(run, "uid").trim(), "1000");
        // The builder lists the build user, which bitbake requires before it cuts a task's
        // network.
        assert_eq!(
            read(run, "account"),
            "builder:x:1000:1000:secretvm build user:/tmp:/bin/bash\n"
        );
        assert_eq!(read(run, "pwd").trim(), "/secret-vm-build/build");
        let env = read(run, "env");
        assert!(env.contains("LANG=en_US.UTF-8\n"), "{env}");
        assert!(!env.lines().any(|l| l.starts_with("CARGO")), "a host variable leaked:\n{env}");
        assert_eq!(env.contains("BB_NO_NETWORK=1\n"), run == "build", "{run}:\n{env}");
    }
    let mut fetch_args = vec!["--runall=fetch".to_owned()];
    fetch_args.extend(want.iter().cloned());
    assert_eq!(read("fetch", "args").lines().collect::<Vec<_>>(), fetch_args);
    assert_eq!(read("build", "args").lines().collect::<Vec<_>>(), want);
    // The kernel's view: the fetch has Docker's default network, the build only loopback.
    let fetch_net = read("fetch", "net");
    assert!(fetch_net.lines().any(|l| l != "lo"), "the fetch run had no network: {fetch_net}");
    assert_eq!(read("build", "net"), "lo\n", "the build run must have no network");

    // conf/ was regenerated: ours in, the stale file gone.
    let conf = ws.join("build/conf");
    assert!(!conf.join("stale.conf").exists());
    let multiconfig = fs::read_to_string(conf.join("multiconfig/tdx.conf")).unwrap();
    assert!(multiconfig.contains("MACHINE = \"secret-vm-tdx\"\n"), "{multiconfig}");
    let bblayers = fs::read_to_string(conf.join("bblayers.conf")).unwrap();
    assert!(bblayers.contains("  /secret-vm-build/yocto/poky/meta \\\n"), "{bblayers}");
    assert!(!bblayers.contains("##OEROOT##"), "{bblayers}");
    let auto = fs::read_to_string(conf.join("auto.conf")).unwrap();
    assert!(auto.contains("DISTRO = \"secret-vm\"\n"), "{auto}");
    assert_eq!(fs::metadata(&conf).unwrap().uid(), 1000, "build/ belongs to the build user");

    // Progress and the raw log carry bitbake's lines.
    assert!(stderr.contains("WARNING: stand-in bitbake: nothing was compiled"), "{stderr}");
    let log = fs::read_to_string(ws.join("build/secretvm-bitbake.log")).unwrap();
    assert!(log.contains(&format!("NOTE: Running task {} of {}", want.len(), want.len())), "{log}");
    assert!(!log.contains(":do_fetch)"), "{log}");
    let fetch_log = fs::read_to_string(ws.join("build/secretvm-bitbake-fetch.log")).unwrap();
    assert!(fetch_log.contains(&format!("({}:do_fetch)", want[0])), "{fetch_log}");
    assert!(stderr.contains("bitbake build: "), "{stderr}");
    assert!(stderr.contains("no network in the container"), "{stderr}");
    // Before the fetch run, BitBake's own disable_network was seen to cut a task's network in
    // the same builder.
    let probe = fs::read_to_string(ws.join("build/secretvm-task-network.log")).unwrap();
    assert!(probe.contains("secretvm-task-network: cut\n"), "{probe}");
    assert!(
        stderr.contains("bitbake cuts the network of every task but do_fetch in the fetch run")
    );

    // The artifacts are what the post-bitbake steps alone make from the same build directory.
    let again = root.path().join("again");
    run_ok(
        secretvm()
            .args(["build", "--machine", "tdx", "--git-revision", "feedc0de", "--from-deploy"])
            .arg(ws.join("build"))
            .arg("--out")
            .arg(&again)
            .current_dir(&ws),
    );
    let artifacts = ws.join("artifacts");
    for name in
        ["sha256sum.txt", "digest.txt", "manifest.json", "tdx/rootfs-prod.iso", "tdx/bzImage"]
    {
        assert_eq!(
            fs::read(artifacts.join(name)).unwrap(),
            fs::read(again.join(name)).unwrap(),
            "{name} differs between the full build and --from-deploy"
        );
    }
    sh(&artifacts, "sha256sum -c --strict --quiet sha256sum.txt");

    // The second build of a reproducibility check: another build directory, and none of the
    // config's shared state, which here lives on the network (a remote sstate mirror and hash
    // server would keep the container's network and reuse tasks).
    let shared = format!(
        "{}\n[cache]\nsstate_mirrors = \"file://.* https://sstate.example.org/PATH;downloadfilename=PATH\"\n\
         hashserve = \"hashserv.example.org:8686\"\n",
        fs::read_to_string(ws.join("yocto/secretvm.toml")).unwrap()
    );
    fs::write(ws.join("yocto/shared.toml"), shared).unwrap();
    let repro = || {
        let mut cmd = secretvm();
        cmd.args(["build", "--config", "yocto/shared.toml", "--engine", "docker"])
            .args(["--user", "1000:1000", "--min-free-gb", "0", "--base-image", base])
            .args(["--git-revision", "feedc0de", "--build-dir", "build-repro", "--from-scratch"])
            .args(["--out", "artifacts-repro"])
            .current_dir(&ws);
        cmd
    };
    run_ok(&mut repro());
    let read = |run: &str, name: &str| {
        fs::read_to_string(ws.join("build-repro/stub-record").join(run).join(name)).unwrap()
    };
    assert_eq!(read("build", "pwd").trim(), "/secret-vm-build/build-repro");
    assert_eq!(read("build", "net"), "lo\n", "shared state must not keep the network");
    let auto = fs::read_to_string(ws.join("build-repro/conf/auto.conf")).unwrap();
    assert!(!auto.contains("SSTATE") && !auto.contains("HASHSERVE"), "{auto}");
    let compare = secretvm()
        .args(["compare", "artifacts", "artifacts-repro"])
        .current_dir(&ws)
        .output()
        .unwrap();
    assert!(compare.status.success(), "{}", String::from_utf8_lossy(&compare.stdout));
    // Run again into the same directory, the earlier build's tasks would be reused.
    let out = repro().output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("--from-scratch") && err.contains("tmp-tdx-glibc"), "{err}");

    // A failed run says what the network has to do with it.
    for (run, hint) in [
        ("fetch", "hint: this run downloads every source"),
        ("build", "hint: every source was fetched and this run has no network"),
    ] {
        let marker = ws.join(format!("stub-fail-{run}"));
        fs::write(&marker, "").unwrap();
        let mut cmd = secretvm();
        cmd.args(["build", "--engine", "docker", "--user", "1000:1000", "--min-free-gb", "0"])
            .args(["--base-image", base])
            .current_dir(&ws);
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains(&format!("bitbake {run} failed")), "{err}");
        assert!(err.contains(hint), "{err}");
        assert_eq!(err.matches("hint: ").count(), 1, "{err}");
        let offline = if run == "build" { " --offline" } else { "" };
        let shell = format!(
            "to look into it in the same environment: cargo xtask shell --machine tdx \
             --engine docker --user 1000:1000 --base-image {base} --min-free-gb 0"
        );
        assert!(err.contains(&format!("{shell}{offline}\n")), "{err}");
        fs::remove_file(&marker).unwrap();
    }
}

/// What the shell test's command reports, one fact per line; it exits 7.
const REPORT: &str = r#"pwd; id -u; echo "$BUILDDIR"; command -v bitbake; tty || true
echo "BB_NO_NETWORK=${BB_NO_NETWORK:-unset}"; echo $(ls /sys/class/net); exit 7"#;

/// `secretvm shell` through the real runner and Docker, on the build's setup: the command
/// runs in the builder as the build user, in the build directory of the stand-in poky's
/// `oe-init-build-env` (bitbake on its `PATH`) with `conf/` regenerated, and its exit status
/// becomes ours; with the network by default and, with `--offline`, as the build run
/// (`BB_NO_NETWORK=1`, only loopback); without a command, bash reads our standard input; and
/// the command gets a terminal exactly when we have one (`script` gives us one).
#[test]
fn shell_runs_a_command_in_the_build_environment() {
    let Some(script) = tool_on_path("script") else { return };
    let Some((_root, ws, base)) = docker_stub_workspace() else { return };
    sh(&ws, "chown -R 1000:1000 .");
    let setup = ["--engine", "docker", "--user", "1000:1000", "--min-free-gb", "0", "--base-image"];
    let shell = |flags: &[&str]| {
        let mut cmd = secretvm();
        cmd.arg("shell").args(setup).arg(base).args(flags).current_dir(&ws);
        cmd.stdin(std::process::Stdio::null());
        cmd
    };

    for (flags, offline) in [(&[][..], false), (&["--offline"][..], true)] {
        let out = shell(flags).args(["--", "sh", "-c", REPORT]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{stdout}\n{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines[..6],
            [
                "/secret-vm-build/build",
                "1000",
                "/secret-vm-build/build",
                "/secret-vm-build/yocto/poky/bitbake/bin/bitbake",
                "not a tty",
                if offline { "BB_NO_NETWORK=1" } else { "BB_NO_NETWORK=unset" },
            ],
            "{stdout}\n{stderr}"
        );
        let interfaces: Vec<&str> = lines[6].split_whitespace().collect();
        if offline {
            assert_eq!(interfaces, ["lo"], "--offline must leave only loopback");
        } else {
            assert!(interfaces.iter().any(|i| *i != "lo"), "no network: {interfaces:?}");
        }
        let network = match offline {
            true => "in build/, BB_NO_NETWORK=1, no network in the container\n",
            false => "in build/, with the network\n",
        };
        assert!(stderr.contains(&format!("shell: sh -c '{REPORT}' {network}")), "{stderr}");
    }
    let multiconfig = fs::read_to_string(ws.join("build/conf/multiconfig/tdx.conf")).unwrap();
    assert!(multiconfig.contains("MACHINE = \"secret-vm-tdx\"\n"), "{multiconfig}");

    // No command: an interactive bash, fed from our standard input.
    let mut child = shell(&[])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"echo \"from stdin in $(pwd) as $(id -u)\"\nexit 3\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout, "from stdin in /secret-vm-build/build as 1000\n");

    // On a terminal, the command gets one of its own.
    let line =
        format!("{} shell {} {base} -- tty", env!("CARGO_BIN_EXE_secretvm"), setup.join(" "));
    let out = Command::new(script)
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .current_dir(&ws)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    // (script echoes the end of its input, /dev/null, as a control character before it.)
    assert!(stdout.lines().any(|l| l.contains("/dev/pts/")), "{stdout}");
}

/// Signed sstate on the build's setup (`secretvm shell`, which prepares the builder as a
/// build does): the build's GnuPG home is made with the builder's gpg from the config's key
/// files (the signing key outside the workspace), belongs to the build user, keeps no copy
/// of the key files, and `conf/sstate-signatures.inc` names the key id gpg itself reports for
/// the signer's signatures; a build removes the signing key's copy when bitbake is done; with
/// a config whose signers do not match the key file, the run stops before the command,
/// naming both keys, and leaves no include for bitbake to read.
#[test]
fn signed_sstate_keyring_is_made_and_checked_before_bitbake() {
    if tool_on_path("gpg").is_none() || tool_on_path("gpg-agent").is_none() {
        return;
    }
    let Some((root, ws, base)) = docker_stub_workspace() else { return };
    let src = secretvm_testkit::GpgHome::new(&root.path().join("gpg-source"));
    let signer = src.key("team CI <ci@example.org>", "cert");
    src.add_signing_subkey(&signer);
    let other = src.key("someone else <o@example.org>", "sign");
    fs::create_dir_all(ws.join("keys")).unwrap();
    src.export(&ws.join("keys/signers.asc"), "--export", &[&signer], "");
    let secret = root.path().join("ci-signing-key.asc");
    src.export(&secret, "--export-secret-keys", &[&signer], "");
    sh(&ws, "chown -R 1000:1000 .");
    // meta-secret, for its gpg wrapper (GPG_BIN), as the last layer.
    let scripts = ws.join("meta-secret/scripts");
    fs::create_dir_all(&scripts).unwrap();
    fs::copy(
        secretvm_testkit::workspace().join("meta-secret/scripts/secretvm-sstate-gpg"),
        scripts.join("secretvm-sstate-gpg"),
    )
    .unwrap();
    sh(&ws, "chown -R 1000:1000 meta-secret");
    let config = fs::read_to_string(ws.join("yocto/secretvm.toml")).unwrap();
    let config =
        config.replacen("[container]", "[[layer]]\npath = \"meta-secret\"\n\n[container]", 1);
    let shell = |signers: &str| {
        let text = format!(
            "{config}\n[cache.sstate_signatures]\nkeys = \"keys/signers.asc\"\n\
             signers = [\"{signers}\"]\nsign_key = \"{}\"\n",
            secret.display()
        );
        fs::write(ws.join("yocto/signed.toml"), text).unwrap();
        secretvm()
            .args(["shell", "--config", "yocto/signed.toml", "--engine", "docker"])
            .args(["--user", "1000:1000", "--min-free-gb", "0", "--base-image", base])
            .args(["--", "cat", "conf/sstate-signatures.inc"])
            .current_dir(&ws)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let home = ws.join("build/secretvm-gnupg");
    let copies = ["signers.pgp", "sign-key.pgp", "signers.pgp.sig"];

    let out = shell(&signer);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let settings: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        settings,
        [
            "SSTATE_VERIFY_SIG = \"1\"".to_owned(),
            format!("SSTATE_VALID_SIGS = \"{}\"", src.goodsig(&signer)),
            "GPG_PATH = \"${TOPDIR}/secretvm-gnupg\"".to_owned(),
            "GPG_BIN = \"${SECRET_VM_LAYERDIR}/scripts/secretvm-sstate-gpg\"".to_owned(),
            format!("SSTATE_SIG_KEY = \"{signer}\""),
        ]
    );
    assert!(stderr.contains(&format!("this build signs what it writes with {signer}")), "{stderr}");
    let meta = fs::metadata(&home).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (1000, 0o700));
    assert!(home.join("pubring.kbx").is_file() && home.join("private-keys-v1.d").is_dir());
    for copy in copies {
        assert!(!home.join(copy).exists(), "{copy} was left in the home");
    }

    // A build keeps the signing key's copy only while bitbake runs.
    assert!(home.join("private-keys-v1.d").read_dir().unwrap().next().is_some());
    let out = secretvm()
        .args(["build", "--config", "yocto/signed.toml", "--engine", "docker"])
        .args(["--user", "1000:1000", "--min-free-gb", "0", "--base-image", base])
        .current_dir(&ws)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("signed sstate: objects are installed only with"), "{stderr}");
    assert!(!home.join("private-keys-v1.d").exists(), "the signing key stayed in {home:?}");
    assert!(home.join("pubring.kbx").is_file());
    assert!(ws.join("build/conf/sstate-signatures.inc").is_file());

    let out = shell(&other);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "the command ran: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("the keyring for signed sstate"), "{stderr}");
    assert!(stderr.contains(&format!("the key file holds {signer} (team CI")), "{stderr}");
    assert!(stderr.contains(&format!("signer {other} is not in the key file")), "{stderr}");
    assert!(!ws.join("build/conf/sstate-signatures.inc").exists());
    for copy in copies {
        assert!(!home.join(copy).exists(), "{copy} was left in the home");
    }
}
