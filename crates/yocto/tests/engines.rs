//! The runner against real components: Docker and podman build the builder image from our
//! Dockerfile (from an empty context, on a Debian base made with debootstrap because no image
//! registry is reachable) and run a command with the flags a build uses; a real permission
//! error on a mount; preflight with no engine on PATH and with a held bitbake.lock; the layer
//! checkout against a local bare git repository.
//!
//! The expected values are what the command inside the container must see given the flags
//! (its uid, working directory, arguments and environment) and what git itself reports.
//! Under `CI=true` a missing engine fails these tests; locally they print `SKIPPED: <why>`.

#![allow(clippy::disallowed_methods)] // Test setup starts debootstrap, tar, git and the engines.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use secretvm_testkit::{
    ENGINE_TEST_BASE, GpgHome, engine_test_base, engine_test_base_as, skip, stand_in_poky,
    tool_on_path, workspace,
};
use secretvm_yocto::config;
use secretvm_yocto::runner::isolation::{self, Reason, Verdict};
use secretvm_yocto::runner::preflight::{self, Check, Preflight};
use secretvm_yocto::runner::{
    self, Engine, EngineRunner, Error, Host, Invocation, Mount, Network, Phase, Runner, User,
    build_env, checkout, image, signing,
};

/// The base image the tests build on: a debootstrapped Debian bookworm imported into the engine.
const BASE: &str = ENGINE_TEST_BASE;

fn is_root() -> bool {
    User::current().uid == 0
}

/// The build user: uid 1000 when the tests run as root (as in CI), else the caller.
fn build_user() -> User {
    if is_root() { User { uid: 1000, gid: 1000 } } else { User::current() }
}

/// The engine, if its program is on PATH and answers and its store has [`BASE`] (see
/// `secretvm_testkit::engine_test_base`); otherwise skips (fails under CI).
fn engine(wanted: config::Engine) -> Option<Engine> {
    let engine = match preflight::resolve_engine(wanted, &Host::from_env()) {
        Ok(e) => e,
        Err(e) => {
            skip(&e.to_string());
            return None;
        }
    };
    engine_test_base(engine.program()?)?;
    Some(engine)
}

/// Extra engine options this test machine needs. Rootful podman sets RLIMIT_NOFILE and
/// RLIMIT_NPROC to its large defaults, which the sandbox these tests run in refuses
/// ("error setting rlimit type 7: operation not permitted"); values within the sandbox's
/// limits work. Docker sets no limits by default.
fn engine_args(engine: Engine) -> Vec<String> {
    match engine {
        Engine::Podman { rootless: false, .. } => {
            ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
                .map(String::from)
                .to_vec()
        }
        _ => Vec::new(),
    }
}

/// A directory the build user owns.
fn owned_dir(parent: &Path, name: &str, user: User) -> PathBuf {
    let dir = parent.join(name);
    fs::create_dir_all(&dir).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid)).unwrap();
    }
    dir
}

/// A directory the build user cannot write: owned by root with mode 0755 when we are root,
/// else ours with mode 0555.
fn unwritable_dir(parent: &Path) -> PathBuf {
    let dir = parent.join("root-owned");
    fs::create_dir_all(&dir).unwrap();
    let mode = if is_root() { 0o755 } else { 0o555 };
    fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
    dir
}

/// Builds the builder image from our Dockerfile on [`BASE`] with `engine` (a no-op when the
/// engine's store has it) and returns its tag.
fn builder_image(engine: Engine, program: &str, host: &Host, tmp: &Path) -> String {
    let dockerfile = fs::read(workspace().join("yocto/docker/Dockerfile")).unwrap();
    let build_args = vec![(image::BASE_IMAGE_ARG.to_owned(), BASE.to_owned())];
    let tag = image::ensure(
        engine,
        host,
        &dockerfile,
        &build_args,
        &engine_args(engine),
        &tmp.join("image.log"),
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{program} could not build the builder image: {e}"));
    assert_eq!(tag, image::tag(&dockerfile, &build_args));
    assert!(image::exists(engine, host, &tag).unwrap(), "{tag} is not in {program}'s store");
    tag
}

/// Writes the builder's account files into `build_dir`, as `secretvm build` does.
fn write_account_files(build_dir: &Path, user: User) {
    for ((name, _), text) in runner::ACCOUNT_FILES.iter().zip(runner::account_files(user)) {
        fs::write(build_dir.join(name), text).unwrap();
    }
}

const SCRIPT: &str = r#"echo "uid=$(id -u) gid=$(id -g)"; echo "cwd=$(pwd)"; echo "arg=$1"
env | sort | sed 's/^/env:/'
locale -a | grep -qx en_US.utf8 && echo locale=en_US.utf8
python3 -c 'import locale; locale.setlocale(locale.LC_ALL, ""); print("python-locale=ok")'
for t in gcc git chrpath diffstat gawk xorriso qemu-img zstd lz4 gpg gpg-agent gpgconf; do command -v "$t" >/dev/null || echo "missing=$t"; done
echo written > out.txt
echo to-stderr >&2"#;

/// Builds the builder image with `engine` and runs [`SCRIPT`] through the runner as a build
/// would; then the permission-error cases.
fn build_and_run(engine: Engine, program: &str) {
    let host = Host::from_env();
    let extra = engine_args(engine);
    let tmp = tempfile::tempdir_in(workspace().join("target")).unwrap();

    let tag = builder_image(engine, program, &host, tmp.path());

    let user = build_user();
    let ws = owned_dir(tmp.path(), "workspace", user);
    let host_vars: Vec<(String, String)> = [
        ("MACHINES", "tdx sev"),
        ("https_proxy", "http://127.0.0.1:9"),
        ("SECRETVM_TEST_TOKEN", "must-not-pass"),
        ("PATH", "/host/only/bin"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let workspace_mount =
        Mount { host: ws.clone(), container: "/secret-vm-build".into(), read_only: false };
    let inv = Invocation {
        argv: ["bash", "-c", SCRIPT, "bash", "an argument with spaces"].map(String::from).to_vec(),
        workdir: "/secret-vm-build".into(),
        mounts: vec![workspace_mount.clone()],
        env: build_env(engine, &host_vars),
        user,
        network: Network::None,
    };
    let mut runner =
        EngineRunner { engine, image: tag.clone(), host: host.clone(), engine_args: extra.clone() };
    let log = tmp.path().join("run.log");
    let mut lines = Vec::new();
    let exit = runner.run(&inv, &log, &mut |l| lines.push(l.to_owned())).unwrap();
    let all = lines.join("\n");
    assert!(exit.success(), "{exit}:\n{all}");
    let expected = [
        format!("uid={} gid={}", user.uid, user.gid),
        "cwd=/secret-vm-build".to_owned(),
        "arg=an argument with spaces".to_owned(),
        "env:MACHINES=tdx sev".to_owned(),
        "env:https_proxy=http://127.0.0.1:9".to_owned(),
        "env:LC_ALL=en_US.UTF-8".to_owned(),
        "env:HOME=/tmp".to_owned(),
        "locale=en_US.utf8".to_owned(),
        "python-locale=ok".to_owned(),
        "to-stderr".to_owned(),
    ];
    for want in &expected {
        assert!(lines.contains(want), "{want:?} not printed:\n{all}");
    }
    assert!(!all.contains("SECRETVM_TEST_TOKEN") && !all.contains("/host/only/bin"), "{all}");
    assert!(!all.contains("missing="), "host tools missing from the image:\n{all}");
    let out = ws.join("out.txt");
    assert_eq!(fs::read_to_string(&out).unwrap(), "written\n");
    assert_eq!(fs::metadata(&out).unwrap().uid(), user.uid, "owner of a file the build wrote");
    let raw = fs::read_to_string(&log).unwrap();
    assert!(raw.contains("cwd=/secret-vm-build\n") && raw.contains("to-stderr\n"), "{raw}");

    // A mount the build user cannot write: preflight says so, with the fix.
    let bad = unwritable_dir(tmp.path());
    let bad_mount =
        Mount { host: bad.clone(), container: "/secret-vm-build".into(), read_only: false };
    let mounts = [workspace_mount, bad_mount.clone()];
    let pre = Preflight {
        engine,
        host: &host,
        user,
        build_dir: &ws.join("build"),
        mounts: &mounts,
        min_free_bytes: 1,
    };
    let Err(Error::Preflight { problems }) = preflight::run(&pre) else {
        panic!("preflight accepted {} for uid {}", bad.display(), user.uid)
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].check, Check::Mount);
    let msg = &problems[0].message;
    assert!(msg.contains(&bad.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("not writable by the build user {}:{}", user.uid, user.gid)));
    assert!(msg.contains("chown"), "{msg}");

    // Read-only, the same directory is fine.
    let read_only = [Mount { read_only: true, ..mounts[1].clone() }];
    assert!(preflight::run(&Preflight { mounts: &read_only, ..pre.clone() }).is_ok());

    // ... and the same mount at run time: the engine's own error reaches the caller.
    let touch = Invocation {
        argv: ["touch", "/secret-vm-build/x"].map(String::from).to_vec(),
        mounts: vec![bad_mount],
        ..inv.clone()
    };
    let mut lines = Vec::new();
    let exit = runner.run(&touch, &log, &mut |l| lines.push(l.to_owned())).unwrap();
    assert!(!exit.success(), "uid {} wrote into {}", user.uid, bad.display());
    let all = lines.join("\n");
    assert!(all.contains("Permission denied"), "{all}");

    // Too little disk for the threshold is reported with the numbers.
    let pre = Preflight { mounts: &[], min_free_bytes: u64::MAX, ..pre };
    let Err(Error::Preflight { problems }) = preflight::run(&pre) else { panic!("disk check") };
    assert!(problems.iter().any(|p| p.check == Check::Disk && p.message.contains("GB free")));
}

#[test]
fn docker_builds_the_builder_image_and_runs_a_command() {
    let Some(engine) = engine(config::Engine::Docker) else { return };
    build_and_run(engine, "docker");
}

/// The keyring of signed sstate made with the builder's gpg, through `engine` with a build's
/// flags (`runner::signing`, whose every check `tests/signing.rs` runs with the host's gpg):
/// it must accept the key id gpg itself reports for a signature by the signer, and sign and
/// verify through the layer's gpg wrapper as bitbake would.
fn sstate_keyring_in_the_builder(engine: Engine, program: &str) {
    let host = Host::from_env();
    let tmp = tempfile::tempdir_in(workspace().join("target")).unwrap();
    let tag = builder_image(engine, program, &host, tmp.path());
    let user = build_user();
    let ws = owned_dir(tmp.path(), "workspace", user);
    let build = owned_dir(&ws, "build", user);
    let home = build.join("secretvm-gnupg");
    fs::create_dir(&home).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();

    let src = GpgHome::new(&tmp.path().join("source"));
    let signer = src.key("sstate signer <s@example.org>", "cert");
    src.add_signing_subkey(&signer);
    src.export(&home.join("signers.pgp"), "--export", &[&signer], "");
    src.export(&home.join("sign-key.pgp"), "--export-secret-keys", &[&signer], "");
    if is_root() {
        for path in [&home, &home.join("signers.pgp"), &home.join("sign-key.pgp")] {
            std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).unwrap();
        }
    }
    write_account_files(&build, user);
    // The layer's gpg wrapper, which bitbake runs (GPG_BIN), where the workspace has it.
    let scripts = ws.join("meta-secret/scripts");
    fs::create_dir_all(&scripts).unwrap();
    fs::copy(
        workspace().join("meta-secret/scripts/secretvm-sstate-gpg"),
        scripts.join("secretvm-sstate-gpg"),
    )
    .unwrap();
    let mut mounts =
        vec![Mount { host: ws.clone(), container: "/secret-vm-build".into(), read_only: false }];
    mounts.extend(runner::ACCOUNT_FILES.iter().map(|(name, path)| Mount {
        host: build.join(name),
        container: (*path).to_owned(),
        read_only: true,
    }));
    let base = Invocation {
        argv: Vec::new(),
        workdir: "/secret-vm-build".into(),
        mounts,
        env: build_env(engine, &[]),
        user,
        network: Network::Default,
    };
    let mut runner = EngineRunner { engine, image: tag, host, engine_args: engine_args(engine) };
    let files = signing::Files {
        home: "build/secretvm-gnupg",
        keys: "build/secretvm-gnupg/signers.pgp",
        sign_key: Some("build/secretvm-gnupg/sign-key.pgp"),
        gpg_bin: "meta-secret/scripts/secretvm-sstate-gpg",
    };
    let keyring =
        signing::prepare(&mut runner, &base, &files, &home, std::slice::from_ref(&signer))
            .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert_eq!(keyring.valid_sigs, [src.goodsig(&signer)]);
    assert_eq!(keyring.sign_key, Some(signer));
    let verify = fs::read_to_string(home.join("verify.log")).unwrap();
    assert!(verify.contains("[GNUPG:] GOODSIG "), "{verify}");
    assert_eq!(fs::metadata(home.join("pubring.kbx")).unwrap().uid(), user.uid);
}

#[test]
fn docker_makes_the_sstate_keyring_in_the_builder() {
    let Some(engine) = engine(config::Engine::Docker) else { return };
    sstate_keyring_in_the_builder(engine, "docker");
}

#[test]
fn podman_builds_the_builder_image_and_runs_a_command() {
    let Some(engine) = engine(config::Engine::Podman) else { return };
    build_and_run(engine, "podman");
}

/// A build's fetch run in the builder, on a stand-in poky checkout that carries BitBake's own
/// library: the runner's task-network check must find that BitBake's `disable_network` cuts a
/// task's network there. Then what the kernel says without the runner's additions: with no
/// account for the build user (Docker lists none; podman adds one itself) and, for Docker,
/// without `--cap-add=SYS_ADMIN` (the build run, which has no network, does not get it), where
/// Docker's default seccomp profile refuses `unshare`. Last, `no-new-privileges`: a setuid-root
/// program in the workspace stays the build user in a run with the build's flags, and becomes
/// root in the same container started without that option.
fn bitbake_cuts_the_network_of_its_tasks(engine: Engine, program: &str) {
    let host = Host::from_env();
    let tmp = tempfile::tempdir_in(workspace().join("target")).unwrap();
    let tag = builder_image(engine, program, &host, tmp.path());
    let user = build_user();
    let ws = owned_dir(tmp.path(), "workspace", user);
    if stand_in_poky(&ws.join("yocto/poky"), "#!/bin/sh\nexit 0\n").is_none() {
        return;
    }
    let text = fs::read_to_string(workspace().join("yocto/secretvm.toml")).unwrap();
    let config = config::parse("secretvm.toml", &text).unwrap();
    let machines = config.select_machines(&["tdx"]).unwrap();
    let inv = runner::build_invocation(&config, &ws, &machines, &[], engine, user, &[]);
    let build_dir = owned_dir(&ws, &config.build_dir, user);
    write_account_files(&build_dir, user);
    let steps = runner::build_steps(inv, &config.cache, false);
    let (fetch, build) = (&steps[0].invocation, &steps[1].invocation);
    assert_eq!((fetch.network, build.network), (Network::Default, Network::None));
    let mut runner = EngineRunner {
        engine,
        image: tag.clone(),
        host: host.clone(),
        engine_args: engine_args(engine),
    };
    let log = tmp.path().join("probe.log");
    if let Err(e) = isolation::check(&mut runner, engine, fetch, &log) {
        panic!("{e}\n{}", fs::read_to_string(&log).unwrap_or_default());
    }

    let verdict = |runner: &mut EngineRunner, inv: &Invocation| {
        let mut lines = Vec::new();
        let exit = runner.run(&isolation::probe(inv), &log, &mut |l| lines.push(l.to_owned()));
        isolation::verdict(&lines, exit.unwrap())
    };
    let mut no_accounts = fetch.clone();
    no_accounts.mounts.retain(|m| !m.container.starts_with("/etc/"));
    let docker = engine == Engine::Docker;
    let want =
        if docker { Verdict::Open(Reason::NotLocal(user.uid.to_string())) } else { Verdict::Cut };
    assert_eq!(verdict(&mut runner, &no_accounts), want, "without the account files");
    let want = if docker {
        Verdict::Open(Reason::Unshare("Operation not permitted".into()))
    } else {
        Verdict::Cut
    };
    assert_eq!(verdict(&mut runner, build), want, "{program} without --cap-add");

    // no-new-privileges: a setuid-root copy of `id` stays uid 1000 in the build's run ...
    if !is_root() {
        return;
    }
    let suid = ws.join("suid-id");
    fs::copy("/usr/bin/id", &suid).unwrap();
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
    let id =
        Invocation { argv: vec!["/secret-vm-build/suid-id".into(), "-u".into()], ..fetch.clone() };
    let mut lines = Vec::new();
    assert!(runner.run(&id, &log, &mut |l| lines.push(l.to_owned())).unwrap().success());
    assert_eq!(lines, [user.uid.to_string()], "the effective uid under the build's flags");
    // ... and becomes root without it.
    let mut args = engine.global_args();
    args.extend(["run", "--rm", "--user", "1000:1000"].map(String::from));
    args.extend(engine_args(engine));
    args.extend(
        ["-v", &format!("{}:/ws", ws.display()), &tag, "/ws/suid-id", "-u"].map(|s| s.to_string()),
    );
    let out = Command::new(program).args(&args).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{args:?}: {out:?}");
}

#[test]
fn docker_lets_bitbake_cut_the_network_of_its_tasks() {
    let Some(engine) = engine(config::Engine::Docker) else { return };
    bitbake_cuts_the_network_of_its_tasks(engine, "docker");
}

#[test]
fn podman_lets_bitbake_cut_the_network_of_its_tasks() {
    let Some(engine) = engine(config::Engine::Podman) else { return };
    bitbake_cuts_the_network_of_its_tasks(engine, "podman");
}

/// Rootless podman, as a build by an unprivileged user runs it: the runner adds
/// `--userns=keep-id`, so the command runs as the invoking user's own uid and what it writes
/// through the workspace mount belongs to that user on the host. When the tests run as root
/// (as in CI), podman runs as `SECRETVM_ROOTLESS_USER` (made by `cargo xtask deps`) through a
/// `podman` on PATH that is `runuser -u <user> -- podman`; otherwise as the caller.
#[test]
fn rootless_podman_runs_the_build_as_the_invoking_user() {
    if tool_on_path("podman").is_none() {
        return;
    }
    let tmp = tempfile::tempdir_in(workspace().join("target")).unwrap();
    // The rootless user must reach the mounted directory.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mut host = Host::from_env();
    let user = if is_root() {
        let Ok(name) = std::env::var("SECRETVM_ROOTLESS_USER") else {
            skip("SECRETVM_ROOTLESS_USER is not set: run `cargo xtask deps` as root");
            return;
        };
        if tool_on_path("runuser").is_none() || engine_test_base_as("podman", Some(&name)).is_none()
        {
            return;
        }
        let wrapper = tmp.path().join("bin");
        fs::create_dir(&wrapper).unwrap();
        let script = format!("#!/bin/sh\nexec runuser -u '{name}' -- podman \"$@\"\n");
        fs::write(wrapper.join("podman"), script).unwrap();
        fs::set_permissions(wrapper.join("podman"), fs::Permissions::from_mode(0o755)).unwrap();
        let mut path = wrapper.into_os_string();
        path.push(":");
        path.push(&host.path);
        host.path = path;
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
        };
        User { uid: id("-u"), gid: id("-g") }
    } else {
        if engine_test_base("podman").is_none() {
            return;
        }
        User::current()
    };
    let engine = Engine::Podman { cgroup: preflight::host_cgroup_mode(), rootless: true };
    let ws = owned_dir(tmp.path(), "workspace", user);
    let host_vars: Vec<(String, String)> =
        [("MACHINES", "sev"), ("SECRETVM_TEST_TOKEN", "must-not-pass")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    let inv = Invocation {
        argv: [
            "sh",
            "-c",
            r#"echo "uid=$(id -u) gid=$(id -g)"; echo "cwd=$(pwd)"; echo "arg=$1"
env | sed 's/^/env:/'; echo written > out.txt"#,
            "sh",
            "one argument",
        ]
        .map(String::from)
        .to_vec(),
        workdir: "/secret-vm-build".into(),
        mounts: vec![Mount {
            host: ws.clone(),
            container: "/secret-vm-build".into(),
            read_only: false,
        }],
        env: build_env(engine, &host_vars),
        user,
        network: Network::None,
    };
    let plan = engine.plan(&inv, BASE, &[]).unwrap();
    assert!(plan.args.contains(&"--userns=keep-id".to_owned()), "{:?}", plan.args);
    let mut runner = EngineRunner {
        engine,
        image: BASE.to_owned(),
        host: host.clone(),
        engine_args: Vec::new(),
    };
    let mut lines = Vec::new();
    let exit = runner.run(&inv, &tmp.path().join("run.log"), &mut |l| lines.push(l.to_owned()));
    let all = lines.join("\n");
    assert!(exit.as_ref().is_ok_and(|e| e.success()), "{exit:?}:\n{all}");
    for want in [
        format!("uid={} gid={}", user.uid, user.gid),
        "cwd=/secret-vm-build".to_owned(),
        "arg=one argument".to_owned(),
        "env:MACHINES=sev".to_owned(),
    ] {
        assert!(lines.contains(&want), "{want:?} not printed:\n{all}");
    }
    assert!(!all.contains("SECRETVM_TEST_TOKEN"), "{all}");
    let out = ws.join("out.txt");
    assert_eq!(fs::read_to_string(&out).unwrap(), "written\n");
    let owner = fs::metadata(&out).unwrap();
    assert_eq!((owner.uid(), owner.gid()), (user.uid, user.gid), "owner on the host");

    // bitbake can cut a task's network in the builder, in a fetch run with rootless podman's
    // own network (slirp4netns) and in the build run without one. The builder image comes
    // from rootful podman's store when we are root (building it again in the rootless store
    // would take minutes), else it is built.
    let tag = if is_root() {
        let rootful = Engine::Podman { cgroup: preflight::host_cgroup_mode(), rootless: false };
        let tag = builder_image(rootful, "podman", &Host::from_env(), tmp.path());
        if image::exists(engine, &host, &tag).unwrap() {
            tag
        } else {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "podman save '{tag}' | '{}' load -q",
                    tmp.path().join("bin/podman").display()
                ))
                .output()
                .unwrap();
            assert!(out.status.success(), "copying {tag} into the rootless store: {out:?}");
            tag
        }
    } else {
        builder_image(engine, "podman", &host, tmp.path())
    };
    if stand_in_poky(&ws.join("yocto/poky"), "#!/bin/sh\nexit 0\n").is_none() {
        return;
    }
    let text = fs::read_to_string(workspace().join("yocto/secretvm.toml")).unwrap();
    let config = config::parse("secretvm.toml", &text).unwrap();
    let machines = config.select_machines(&["sev"]).unwrap();
    let inv = runner::build_invocation(&config, &ws, &machines, &[], engine, user, &[]);
    let build_dir = owned_dir(&ws, &config.build_dir, user);
    write_account_files(&build_dir, user);
    let mut runner = EngineRunner { engine, image: tag, host, engine_args: Vec::new() };
    for step in runner::build_steps(inv, &config.cache, false) {
        let log = tmp.path().join("probe.log");
        // One run (each start copies the image under rootless podman's vfs store): the
        // interfaces the run itself has, besides loopback exactly in the fetch run, then the
        // probe's answer.
        let probe = isolation::probe(&step.invocation);
        let script = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; exec python3 -c \"$0\"";
        let mut argv = probe.argv[..probe.argv.len() - 3].to_vec();
        argv.extend(["sh", "-c", script, isolation::PROBE].map(String::from));
        let both = Invocation { argv, ..probe };
        let mut lines = Vec::new();
        let exit = runner.run(&both, &log, &mut |l| lines.push(l.to_owned())).unwrap();
        let is_interface =
            |l: &&String| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric());
        let networked = lines.iter().filter(is_interface).any(|l| l != "lo");
        assert_eq!(networked, step.phase == Phase::Fetch, "{:?} run: {lines:?}", step.phase);
        assert_eq!(isolation::verdict(&lines, exit), Verdict::Cut, "{:?} run", step.phase);
    }
}

#[test]
fn no_engine_on_path_stops_preflight_with_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    let host = Host { path: empty.path().as_os_str().to_owned(), vars: Vec::new() };
    let err = preflight::resolve_engine(config::Engine::Auto, &host).unwrap_err();
    let msg = err.to_string();
    for want in [
        "no container engine is reachable",
        "apt-get install docker.io",
        "podman",
        "--engine native",
    ] {
        assert!(msg.contains(want), "{want:?} missing from:\n{msg}");
    }
    let err = preflight::resolve_engine(config::Engine::Docker, &host).unwrap_err().to_string();
    assert!(err.contains("`docker` is not on PATH") && err.contains("--engine native"), "{err}");

    let pre = Preflight {
        engine: Engine::Docker,
        host: &host,
        user: User { uid: 1000, gid: 1000 },
        build_dir: empty.path(),
        mounts: &[],
        min_free_bytes: 1,
    };
    let Err(Error::Preflight { problems }) = preflight::run(&pre) else { panic!("no engine") };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].check, Check::Engine);
    assert!(problems[0].message.contains("apt-get install docker.io"), "{}", problems[0]);
}

#[test]
fn a_held_bitbake_lock_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let lock_path = dir.path().join("bitbake.lock");
    fs::write(&lock_path, "12345\n").unwrap();
    let host = Host::from_env();
    let pre = Preflight {
        engine: Engine::Native,
        host: &host,
        user: User { uid: 1000, gid: 1000 },
        build_dir: dir.path(),
        mounts: &[],
        min_free_bytes: 1,
    };
    let lock_problems = || match preflight::run(&pre) {
        Ok(()) => Vec::new(),
        Err(Error::Preflight { problems }) => {
            problems.into_iter().filter(|p| p.check == Check::BitbakeLock).collect()
        }
        Err(e) => panic!("{e}"),
    };
    assert!(lock_problems().is_empty(), "an unheld lock file is free");
    // Hold it as bitbake does: an exclusive flock on its own open file.
    let held = fs::File::open(&lock_path).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let problems = lock_problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("held by a running bitbake (12345)"), "{}", problems[0]);
    drop(held);
    assert!(lock_problems().is_empty(), "released again");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn layer_checkout_detaches_at_the_pinned_commit_and_refuses_local_changes() {
    if tool_on_path("git").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    git(&src, &["init", "--quiet", "--initial-branch=scarthgap"]);
    fs::write(src.join("layer.conf"), "one\n").unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "--quiet", "-m", "one"]);
    let first = git(&src, &["rev-parse", "HEAD"]);
    fs::write(src.join("layer.conf"), "two\n").unwrap();
    git(&src, &["commit", "--quiet", "-am", "two"]);
    let second = git(&src, &["rev-parse", "HEAD"]);
    let bare = tmp.path().join("remote.git");
    git(tmp.path(), &["clone", "--quiet", "--bare", src.to_str().unwrap(), bare.to_str().unwrap()]);
    // GitHub serves any reachable commit by id; a plain git server needs this setting.
    git(&bare, &["config", "uploadpack.allowReachableSHA1InWant", "true"]);

    let ws = tmp.path().join("ws");
    let host = Host::from_env();
    let mut repo = config::Repo {
        name: "layer".into(),
        url: bare.to_str().unwrap().to_owned(),
        branch: Some("scarthgap".into()),
        commit: first.clone(),
        path: "yocto/layer".into(),
    };
    let dir = ws.join("yocto/layer");
    assert_eq!(checkout::checkout(&ws, &repo, &host).unwrap(), first);
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), first);
    assert_eq!(git(&dir, &["rev-parse", "--abbrev-ref", "HEAD"]), "HEAD", "detached");
    assert_eq!(fs::read_to_string(dir.join("layer.conf")).unwrap(), "one\n");
    // The server serves commits by id, so only the pinned commit came, without its history.
    assert_eq!(git(&dir, &["rev-parse", "--is-shallow-repository"]), "true");
    assert_eq!(git(&dir, &["rev-list", "--count", "HEAD"]), "1");

    // Moving the pin moves the checkout.
    repo.commit = second.clone();
    assert_eq!(checkout::checkout(&ws, &repo, &host).unwrap(), second);
    assert_eq!(fs::read_to_string(dir.join("layer.conf")).unwrap(), "two\n");

    // Local changes are refused and left alone.
    fs::write(dir.join("layer.conf"), "edited\n").unwrap();
    repo.commit = first.clone();
    let err = checkout::checkout(&ws, &repo, &host).unwrap_err();
    assert!(matches!(err, Error::Dirty { .. }), "{err}");
    assert!(err.to_string().contains("layer.conf"), "{err}");
    assert_eq!(fs::read_to_string(dir.join("layer.conf")).unwrap(), "edited\n");

    // Without a branch the commit is fetched by id, into a fresh checkout.
    let ws2 = tmp.path().join("ws2");
    let by_id = config::Repo { branch: None, commit: first.clone(), ..repo.clone() };
    assert_eq!(checkout::checkout(&ws2, &by_id, &host).unwrap(), first);
    assert_eq!(git(&ws2.join("yocto/layer"), &["rev-parse", "HEAD"]), first);

    // A commit the remote does not have is an error naming the command.
    let missing = config::Repo { commit: "0".repeat(40), path: "yocto/other".into(), ..by_id };
    let err = checkout::checkout(&ws2, &missing, &host).unwrap_err().to_string();
    assert!(err.contains("git") && err.contains(&"0".repeat(40)), "{err}");

    // A server that refuses commits by id: the branch is fetched, with its history. Protocol
    // v2 serves any commit, so the checkout (made beforehand, and kept since it is clean)
    // speaks v0, to a server without uploadpack.allowReachableSHA1InWant.
    let strict = tmp.path().join("strict.git");
    git(
        tmp.path(),
        &["clone", "--quiet", "--bare", src.to_str().unwrap(), strict.to_str().unwrap()],
    );
    let ws3 = tmp.path().join("ws3");
    let dir3 = ws3.join("yocto/layer");
    fs::create_dir_all(&dir3).unwrap();
    git(&dir3, &["init", "--quiet"]);
    git(&dir3, &["config", "protocol.version", "0"]);
    let probe = tmp.path().join("probe");
    fs::create_dir(&probe).unwrap();
    git(&probe, &["init", "--quiet"]);
    let refused = Command::new("git")
        .args(["-C", probe.to_str().unwrap(), "-c", "protocol.version=0", "fetch", "--depth=1"])
        .arg(format!("file://{}", strict.display()))
        .arg(&first)
        .output()
        .unwrap();
    assert!(!refused.status.success(), "this server must refuse a commit by id");
    let from_branch = config::Repo {
        url: format!("file://{}", strict.display()),
        branch: Some("scarthgap".into()),
        commit: first.clone(),
        ..repo.clone()
    };
    assert_eq!(checkout::checkout(&ws3, &from_branch, &host).unwrap(), first);
    assert_eq!(git(&dir3, &["rev-parse", "HEAD"]), first);
    assert_eq!(git(&dir3, &["rev-parse", "--is-shallow-repository"]), "false");
    assert_eq!(git(&dir3, &["rev-parse", "refs/remotes/origin/scarthgap"]), second);
}
