//! Tests of the pure part of the runner: argv per engine (goldens written from the engines'
//! documented command-line syntax and checked against real runs in `tests/engines.rs`), the uid
//! 0 refusal, the environment allowlist, the cgroup decision, the image tag and the
//! bitbake command.

use std::path::PathBuf;

use expect_test::{Expect, expect};

use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn config() -> Config {
    crate::config::parse("yocto/secretvm.toml", include_str!("../../../../yocto/secretvm.toml"))
        .unwrap()
}

/// The invocation of a `tdx` build on a host with a proxy, MACHINES and unrelated variables.
fn tdx_build(engine: Engine) -> Invocation {
    let config = config();
    let host = vars(&[
        ("PATH", "/usr/bin:/bin"),
        ("HOME", "/home/alice"),
        ("https_proxy", "http://proxy:3128"),
        ("MACHINES", "tdx"),
        ("AWS_SECRET_ACCESS_KEY", "do-not-leak"),
        ("SSH_AUTH_SOCK", "/run/agent"),
    ]);
    let machines = config.select_machines(&["tdx"]).unwrap();
    build_invocation(
        &config,
        Path::new("/home/alice/secretvm"),
        &machines,
        &["-k".to_owned()],
        engine,
        User { uid: 1000, gid: 1000 },
        &host,
    )
}

fn check_plan(engine: Engine, expect: Expect) {
    let spawn = engine.plan(&tdx_build(engine), "secretvm-builder:0123456789ab", &[]).unwrap();
    expect.assert_eq(&spawn.to_string());
}

#[test]
fn docker_argv() {
    check_plan(
        Engine::Docker,
        expect![[
            r#"MACHINES=tdx https_proxy=http://proxy:3128 docker run --rm --platform linux/amd64 --user 1000:1000 --security-opt=no-new-privileges --cap-add=SYS_ADMIN -e MACHINES -e https_proxy -e HOME=/tmp -e LANG=en_US.UTF-8 -e LC_ALL=en_US.UTF-8 -v /home/alice/secretvm:/secret-vm-build -v /home/alice/secretvm/build/secretvm-passwd:/etc/passwd:ro -v /home/alice/secretvm/build/secretvm-group:/etc/group:ro -w /secret-vm-build secretvm-builder:0123456789ab bash -c 'source yocto/poky/oe-init-build-env build >/dev/null && exec "$@"' builder bitbake -k mc:tdx:virtual/kernel mc:tdx:secret-vm-initramfs mc:tdx:virtual/ovmf mc:tdx:secret-vm-rootfs-dev mc:tdx:secret-vm-rootfs-prod mc:tdx:secret-vm-rootfs-gpu-dev mc:tdx:secret-vm-rootfs-gpu-prod"#
        ]],
    );
}

#[test]
fn podman_argv_on_unified_cgroups() {
    check_plan(
        Engine::Podman { cgroup: CgroupMode::Unified, rootless: true },
        expect![[
            r#"MACHINES=tdx https_proxy=http://proxy:3128 podman run --rm --platform linux/amd64 --user 1000:1000 --userns=keep-id --security-opt=no-new-privileges -e MACHINES -e https_proxy -e HOME=/tmp -e LANG=en_US.UTF-8 -e LC_ALL=en_US.UTF-8 -v /home/alice/secretvm:/secret-vm-build -v /home/alice/secretvm/build/secretvm-passwd:/etc/passwd:ro -v /home/alice/secretvm/build/secretvm-group:/etc/group:ro -w /secret-vm-build secretvm-builder:0123456789ab bash -c 'source yocto/poky/oe-init-build-env build >/dev/null && exec "$@"' builder bitbake -k mc:tdx:virtual/kernel mc:tdx:secret-vm-initramfs mc:tdx:virtual/ovmf mc:tdx:secret-vm-rootfs-dev mc:tdx:secret-vm-rootfs-prod mc:tdx:secret-vm-rootfs-gpu-dev mc:tdx:secret-vm-rootfs-gpu-prod"#
        ]],
    );
}

#[test]
fn podman_argv_on_legacy_cgroups() {
    check_plan(
        Engine::Podman { cgroup: CgroupMode::Legacy, rootless: true },
        expect![[
            r#"MACHINES=tdx https_proxy=http://proxy:3128 podman --runtime runc --cgroup-manager=cgroupfs run --rm --platform linux/amd64 --user 1000:1000 --userns=keep-id --security-opt=no-new-privileges -e MACHINES -e https_proxy -e HOME=/tmp -e LANG=en_US.UTF-8 -e LC_ALL=en_US.UTF-8 -v /home/alice/secretvm:/secret-vm-build -v /home/alice/secretvm/build/secretvm-passwd:/etc/passwd:ro -v /home/alice/secretvm/build/secretvm-group:/etc/group:ro -w /secret-vm-build secretvm-builder:0123456789ab bash -c 'source yocto/poky/oe-init-build-env build >/dev/null && exec "$@"' builder bitbake -k mc:tdx:virtual/kernel mc:tdx:secret-vm-initramfs mc:tdx:virtual/ovmf mc:tdx:secret-vm-rootfs-dev mc:tdx:secret-vm-rootfs-prod mc:tdx:secret-vm-rootfs-gpu-dev mc:tdx:secret-vm-rootfs-gpu-prod"#
        ]],
    );
}

#[test]
fn artifacts_narrow_the_bitbake_targets() {
    // Across machines, in config order: the boot chains of tdx and sev (gcp-tdx has none).
    let config = config();
    let selected = config.select(&[], &["ovmf.fd", "initramfs.cpio.gz", "bzImage"]).unwrap();
    let machines: Vec<&Machine> = selected.machines.iter().collect();
    assert_eq!(
        bitbake_targets(&machines),
        [
            "mc:tdx:virtual/kernel",
            "mc:tdx:secret-vm-initramfs",
            "mc:tdx:virtual/ovmf",
            "mc:sev:virtual/kernel",
            "mc:sev:secret-vm-initramfs",
            "mc:sev:virtual/ovmf",
        ]
    );
    let inv = build_invocation(
        &config,
        Path::new("/w"),
        &machines[..1],
        &[],
        Engine::Native,
        User { uid: 1000, gid: 1000 },
        &[],
    );
    let tail: Vec<&str> = inv.argv.iter().rev().take(4).rev().map(String::as_str).collect();
    assert_eq!(
        tail,
        ["bitbake", "mc:tdx:virtual/kernel", "mc:tdx:secret-vm-initramfs", "mc:tdx:virtual/ovmf"]
    );
}

#[test]
fn native_argv() {
    check_plan(
        Engine::Native,
        expect![[
            r#"cd /home/alice/secretvm && env -i MACHINES=tdx https_proxy=http://proxy:3128 PATH=/usr/bin:/bin HOME=/home/alice LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8 bash -c 'source yocto/poky/oe-init-build-env build >/dev/null && exec "$@"' builder bitbake -k mc:tdx:virtual/kernel mc:tdx:secret-vm-initramfs mc:tdx:virtual/ovmf mc:tdx:secret-vm-rootfs-dev mc:tdx:secret-vm-rootfs-prod mc:tdx:secret-vm-rootfs-gpu-dev mc:tdx:secret-vm-rootfs-gpu-prod"#
        ]],
    );
}

#[test]
fn native_spawn_clears_the_environment() {
    let spawn = Engine::Native.plan(&tdx_build(Engine::Native), "", &[]).unwrap();
    let env = spawn.env.expect("a native run sets the whole environment");
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["MACHINES", "https_proxy", "PATH", "HOME", "LANG", "LC_ALL"]);
    assert_eq!(spawn.cwd, Some(PathBuf::from("/home/alice/secretvm")));
}

#[test]
fn variables_off_the_allowlist_are_not_passed() {
    for engine in [
        Engine::Docker,
        Engine::Podman { cgroup: CgroupMode::Unified, rootless: true },
        Engine::Native,
    ] {
        let line = engine.plan(&tdx_build(engine), "img", &[]).unwrap().to_string();
        assert!(!line.contains("AWS_SECRET_ACCESS_KEY"), "{line}");
        assert!(!line.contains("do-not-leak"), "{line}");
        assert!(!line.contains("SSH_AUTH_SOCK"), "{line}");
    }
    // Containers get neither the host's PATH nor its HOME.
    let docker = Engine::Docker.plan(&tdx_build(Engine::Docker), "img", &[]).unwrap().to_string();
    assert!(!docker.contains("/usr/bin:/bin") && !docker.contains("/home/alice "), "{docker}");
}

#[test]
fn team_cache_directories_are_mounted_at_their_own_path() {
    let mut config = config();
    config.cache.dl_dir = Some("/srv/yocto/downloads".into());
    config.cache.sstate_dir = Some("/srv/yocto/sstate-cache".into());
    let mounts = build_mounts(&config, Path::new("/w"));
    let pairs: Vec<(String, &str)> =
        mounts.iter().map(|m| (m.host.display().to_string(), m.container.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("/w".to_owned(), "/secret-vm-build"),
            ("/srv/yocto/downloads".to_owned(), "/srv/yocto/downloads"),
            ("/srv/yocto/sstate-cache".to_owned(), "/srv/yocto/sstate-cache"),
        ]
    );
}

#[test]
fn uid_0_is_refused_by_every_engine_and_the_recording_runner() {
    for engine in [
        Engine::Docker,
        Engine::Podman { cgroup: CgroupMode::Legacy, rootless: true },
        Engine::Native,
    ] {
        let mut inv = tdx_build(engine);
        inv.user = User { uid: 0, gid: 0 };
        let err = engine.plan(&inv, "img", &[]).unwrap_err();
        assert!(matches!(err, Error::Root), "{err:?}");
        assert!(err.to_string().contains("refuses to build as root"), "{err}");
    }
    let mut rec = Recording::default();
    let mut inv = tdx_build(Engine::Docker);
    inv.user.uid = 0;
    assert!(matches!(rec.run(&inv, Path::new("log"), &mut |_| {}), Err(Error::Root)));
    assert!(rec.invocations.is_empty());
}

#[test]
fn recording_runner_records_and_replays() {
    let mut rec = Recording {
        output: vec!["NOTE: Running task 1 of 2 (mc:tdx:/x/a_1.0.bb:do_fetch)".into()],
        exit: Exit::Code(1),
        ..Recording::default()
    };
    let inv = tdx_build(Engine::Docker);
    let mut seen = Vec::new();
    let exit = rec.run(&inv, Path::new("/tmp/b.log"), &mut |l| seen.push(l.to_owned())).unwrap();
    assert_eq!(exit, Exit::Code(1));
    assert_eq!(seen, rec.output);
    assert_eq!(rec.invocations, [(inv, PathBuf::from("/tmp/b.log"))]);
}

#[test]
fn unsafe_values_are_refused() {
    let mut inv = tdx_build(Engine::Docker);
    inv.mounts[0].host = PathBuf::from("/home/a:b");
    assert!(matches!(Engine::Docker.plan(&inv, "img", &[]), Err(Error::Invalid { .. })));
    let mut inv = tdx_build(Engine::Docker);
    inv.env.push(("BAD NAME".into(), "x".into()));
    assert!(matches!(Engine::Docker.plan(&inv, "img", &[]), Err(Error::Invalid { .. })));
    let inv = tdx_build(Engine::Docker);
    assert!(matches!(Engine::Docker.plan(&inv, "--privileged", &[]), Err(Error::Invalid { .. })));
    let mut inv = tdx_build(Engine::Native);
    inv.workdir = "/elsewhere".into();
    assert!(matches!(Engine::Native.plan(&inv, "", &[]), Err(Error::Invalid { .. })));
}

#[test]
fn cgroup_mode_from_mountinfo() {
    // Lines of /proc/self/mountinfo from a hybrid host (this machine) and a unified one.
    let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                  32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                  41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
    let unified = "23 22 0:21 / /sys rw - sysfs sysfs rw\n\
                   26 23 0:24 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
    let v1 = "32 31 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";
    assert_eq!(cgroup_mode(hybrid), CgroupMode::Legacy);
    assert_eq!(cgroup_mode(unified), CgroupMode::Unified);
    assert_eq!(cgroup_mode(v1), CgroupMode::Legacy);
}

#[test]
fn image_tag_is_sha256_of_dockerfile_and_build_args() {
    // sha256("FROM x\n\nBASE_IMAGE=y") computed with `printf 'FROM x\n\nBASE_IMAGE=y' | sha256sum`.
    let args = vars(&[("BASE_IMAGE", "y")]);
    assert_eq!(image::tag(b"FROM x\n", &args), "secretvm-builder:12543e08bb45");
    assert_ne!(image::tag(b"FROM x\n", &[]), image::tag(b"FROM x\n", &args));
}

#[test]
fn build_spawns() {
    let args = vars(&[("BASE_IMAGE", "base@sha256:00")]);
    let docker = image::build_spawn(Engine::Docker, "t:1", &args, Path::new("/e"), &[]).unwrap();
    expect![[
        r#"docker build --platform linux/amd64 -t t:1 --build-arg BASE_IMAGE=base@sha256:00 -"#
    ]]
    .assert_eq(&docker.to_string());
    let podman = image::build_spawn(
        Engine::Podman { cgroup: CgroupMode::Legacy, rootless: true },
        "t:1",
        &args,
        Path::new("/e"),
        &["--ulimit".to_owned(), "nproc=4096:4096".to_owned()],
    )
    .unwrap();
    expect!["podman --runtime runc --cgroup-manager=cgroupfs build --platform linux/amd64 -t t:1 --build-arg BASE_IMAGE=base@sha256:00 --ulimit nproc=4096:4096 -f - /e"]
        .assert_eq(&podman.to_string());
    assert!(image::build_spawn(Engine::Native, "t:1", &args, Path::new("/e"), &[]).is_err());
}

#[test]
fn dockerfile_base_image_is_the_configs() {
    let dockerfile = include_str!("../../../../yocto/docker/Dockerfile");
    assert_eq!(
        image::arg_default(dockerfile, image::BASE_IMAGE_ARG),
        Some(config().container.base_image.as_str())
    );
}

#[test]
fn writable_by_follows_the_mode_bits() {
    let alice = User { uid: 1000, gid: 1000 };
    assert!(preflight::writable_by(alice, 1000, 0, 0o700));
    assert!(!preflight::writable_by(alice, 1000, 1000, 0o570));
    assert!(preflight::writable_by(alice, 0, 1000, 0o770));
    assert!(!preflight::writable_by(alice, 0, 0, 0o755));
    assert!(preflight::writable_by(alice, 0, 0, 0o1777));
}

#[test]
fn en_us_utf8_in_locale_a() {
    assert!(preflight::has_en_us_utf8("C\nC.utf8\nPOSIX\nen_US.utf8\n"));
    assert!(!preflight::has_en_us_utf8("C\nC.utf8\nPOSIX\n"));
}

#[test]
fn rootful_podman_gets_no_keep_id_and_engine_args_go_before_the_image() {
    let engine = Engine::Podman { cgroup: CgroupMode::Unified, rootless: false };
    let extra = ["--ulimit".to_owned(), "nproc=4096:4096".to_owned()];
    let spawn = engine.plan(&tdx_build(engine), "img", &extra).unwrap();
    let line = spawn.to_string();
    assert!(!line.contains("keep-id"), "{line}");
    let image = spawn.args.iter().position(|a| a == "img").unwrap();
    assert_eq!(spawn.args[image - 2..image], extra);
}

#[test]
fn container_paths_map_back_to_the_host() {
    let mounts = build_mounts(&config(), Path::new("/home/alice/secretvm"));
    let log = "/secret-vm-build/build/tmp-sev-glibc/work/x/temp/log.do_compile.1";
    assert_eq!(
        to_host_path(log, &mounts),
        Some(PathBuf::from(
            "/home/alice/secretvm/build/tmp-sev-glibc/work/x/temp/log.do_compile.1"
        ))
    );
    assert_eq!(to_host_path("/secret-vm-buildx/a", &mounts), None);
    assert_eq!(
        to_host_path("/secret-vm-build", &mounts),
        Some(PathBuf::from("/home/alice/secretvm"))
    );
}

#[test]
fn a_native_build_runs_only_as_the_calling_user() {
    let me = User::current();
    let mut inv = tdx_build(Engine::Native);
    inv.user = User { uid: me.uid + 1, gid: me.gid };
    let mut runner = EngineRunner {
        engine: Engine::Native,
        image: String::new(),
        host: Host::default(),
        engine_args: Vec::new(),
    };
    let err = runner.run(&inv, Path::new("/nonexistent/log"), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("a native build cannot switch users"), "{err}");
}

/// An offline build (a filled DL_DIR) sets BB_NO_NETWORK; oe-core passes it to bitbake, so it
/// must reach the build (without it oe-core's sanity check fails on its connectivity test).
#[test]
fn bb_no_network_reaches_the_build() {
    let host = vars(&[("BB_NO_NETWORK", "1"), ("BB_FETCH_PREMIRRORONLY", "1")]);
    for engine in [Engine::Native, Engine::Docker] {
        let env = build_env(engine, &host);
        assert!(env.contains(&("BB_NO_NETWORK".into(), "1".into())), "{env:?}");
        assert!(!env.iter().any(|(k, _)| k == "BB_FETCH_PREMIRRORONLY"), "{env:?}");
    }
}

/// A build is a fetch with the network, then the build without it (docker: `--network=none`,
/// and `BB_NO_NETWORK=1` for bitbake's fetcher in every engine).
#[test]
fn a_build_fetches_with_the_network_then_builds_without_it() {
    let config = config();
    let inv = tdx_build(Engine::Docker);
    let steps = build_steps(inv.clone(), &config.cache, false);
    let plans: Vec<String> = steps
        .iter()
        .map(|s| {
            let spawn = Engine::Docker.plan(&s.invocation, "secretvm-builder:0123456789ab", &[]);
            format!("{}: {}", s.phase.name(), spawn.unwrap())
        })
        .collect();
    expect![[r#"
        fetch: MACHINES=tdx https_proxy=http://proxy:3128 docker run --rm --platform linux/amd64 --user 1000:1000 --security-opt=no-new-privileges --cap-add=SYS_ADMIN -e MACHINES -e https_proxy -e HOME=/tmp -e LANG=en_US.UTF-8 -e LC_ALL=en_US.UTF-8 -v /home/alice/secretvm:/secret-vm-build -v /home/alice/secretvm/build/secretvm-passwd:/etc/passwd:ro -v /home/alice/secretvm/build/secretvm-group:/etc/group:ro -w /secret-vm-build secretvm-builder:0123456789ab bash -c 'source yocto/poky/oe-init-build-env build >/dev/null && exec "$@"' builder bitbake --runall=fetch -k mc:tdx:virtual/kernel mc:tdx:secret-vm-initramfs mc:tdx:virtual/ovmf mc:tdx:secret-vm-rootfs-dev mc:tdx:secret-vm-rootfs-prod mc:tdx:secret-vm-rootfs-gpu-dev mc:tdx:secret-vm-rootfs-gpu-prod
        build: MACHINES=tdx https_proxy=http://proxy:3128 BB_NO_NETWORK=1 docker run --rm --platform linux/amd64 --user 1000:1000 --security-opt=no-new-privileges --network=none -e MACHINES -e https_proxy -e HOME=/tmp -e LANG=en_US.UTF-8 -e LC_ALL=en_US.UTF-8 -e BB_NO_NETWORK -v /home/alice/secretvm:/secret-vm-build -v /home/alice/secretvm/build/secretvm-passwd:/etc/passwd:ro -v /home/alice/secretvm/build/secretvm-group:/etc/group:ro -w /secret-vm-build secretvm-builder:0123456789ab bash -c 'source yocto/poky/oe-init-build-env build >/dev/null && exec "$@"' builder bitbake -k mc:tdx:virtual/kernel mc:tdx:secret-vm-initramfs mc:tdx:virtual/ovmf mc:tdx:secret-vm-rootfs-dev mc:tdx:secret-vm-rootfs-prod mc:tdx:secret-vm-rootfs-gpu-dev mc:tdx:secret-vm-rootfs-gpu-prod"#]]
    .assert_eq(&plans.join("\n"));

    // A host's own BB_NO_NETWORK=1 (a filled DL_DIR) is kept once, not doubled.
    let mut offline_host = inv.clone();
    offline_host.env.insert(0, ("BB_NO_NETWORK".into(), "1".into()));
    let build = &build_steps(offline_host, &config.cache, false)[1].invocation;
    assert_eq!(build.env.iter().filter(|(k, _)| k == "BB_NO_NETWORK").count(), 1);

    // Caches on the network keep the container's network for the build; the fetcher stays off.
    let remote = Cache {
        sstate_dir: Some("/srv/sstate".into()),
        hashserve: Some("hashserv.example.org:8686".into()),
        ..Cache::default()
    };
    let build = &build_steps(inv.clone(), &remote, false)[1].invocation;
    assert_eq!(build.network, Network::Default);
    assert!(build.env.contains(&("BB_NO_NETWORK".into(), "1".into())), "{:?}", build.env);

    // --online: the one run, unchanged.
    let online = build_steps(inv.clone(), &config.cache, true);
    assert_eq!(online, [Step { phase: Phase::Online, invocation: inv }]);
}

/// The host of [`tdx_build`], with a terminal type.
fn shell_host() -> Vec<(String, String)> {
    vars(&[
        ("PATH", "/usr/bin:/bin"),
        ("HOME", "/home/alice"),
        ("TERM", "xterm-256color"),
        ("AWS_SECRET_ACCESS_KEY", "do-not-leak"),
    ])
}

fn shell(engine: Engine, command: &[&str]) -> Invocation {
    let command: Vec<String> = command.iter().map(|w| (*w).to_owned()).collect();
    shell_invocation(
        &config(),
        Path::new("/home/alice/secretvm"),
        &command,
        engine,
        User { uid: 1000, gid: 1000 },
        &shell_host(),
    )
}

/// `secretvm shell`: the build's mounts, user and environment plus TERM; standard input kept
/// open, a terminal only when the caller has one, and an interactive bash without a command.
#[test]
fn shell_argv_per_engine() {
    let image = "secretvm-builder:0123456789ab";
    let cache = config().cache;
    let podman = Engine::Podman { cgroup: CgroupMode::Legacy, rootless: true };
    let lines = [
        Engine::Docker.plan_attached(&shell(Engine::Docker, &[]), image, &[], true),
        Engine::Docker.plan_attached(
            &shell(Engine::Docker, &["bitbake", "-e", "mc:tdx:secret-vm-initramfs"]),
            image,
            &[],
            false,
        ),
        Engine::Docker.plan_attached(
            &without_network(
                shell(Engine::Docker, &["bitbake", "-c", "compile", "busybox"]),
                &cache,
            ),
            image,
            &[],
            false,
        ),
        podman.plan_attached(&shell(podman, &[]), image, &[], true),
        Engine::Native.plan_attached(
            &shell(Engine::Native, &["bitbake-layers", "show-layers"]),
            "",
            &[],
            true,
        ),
    ]
    .map(|spawn| spawn.unwrap().to_string());
    expect![[r#"
        TERM=xterm-256color docker run --rm --platform linux/amd64 --interactive --tty --user 1000:1000 --security-opt=no-new-privileges --cap-add=SYS_ADMIN -e HOME=/tmp -e LANG=en_US.UTF-8 -e LC_ALL=en_US.UTF-8 -e TERM -v /home/alice/secretvm:/secret-vm-build -v /home/alice/secretvm/build/secretvm-passwd:/etc/passwd:ro -v /home/alice/secretvm/build/secretvm-group:/etc/group:ro -w /secret-vm-build secretvm-builder:0123456789ab bash -c 'source yocto/poky/oe-init-build-env build >/dev/null && exec "$@"' builder bash
        TERM=xterm-256color docker run --rm --platform linux/amd64 --interactive --user 1000:1000 --security-opt=no-new-privileges --cap-add=SYS_ADMIN -e HOME=/tmp -e LANG=en_US.UTF-8 -e LC_ALL=en_US.UTF-8 -e TERM -v /home/alice/secretvm:/secret-vm-build -v /home/alice/secretvm/build/secretvm-passwd:/etc/passwd:ro -v /home/alice/secretvm/build/secretvm-group:/etc/group:ro -w /secret-vm-build secretvm-builder:0123456789ab bash -c 'source yocto/poky/oe-init-build-env build >/dev/null && exec "$@"' builder bitbake -e mc:tdx:secret-vm-initramfs
        TERM=xterm-256color BB_NO_NETWORK=1 docker run --rm --platform linux/amd64 --interactive --user 1000:1000 --security-opt=no-new-privileges --network=none -e HOME=/tmp -e LANG=en_US.UTF-8 -e LC_ALL=en_US.UTF-8 -e TERM -e BB_NO_NETWORK -v /home/alice/secretvm:/secret-vm-build -v /home/alice/secretvm/build/secretvm-passwd:/etc/passwd:ro -v /home/alice/secretvm/build/secretvm-group:/etc/group:ro -w /secret-vm-build secretvm-builder:0123456789ab bash -c 'source yocto/poky/oe-init-build-env build >/dev/null && exec "$@"' builder bitbake -c compile busybox
        TERM=xterm-256color podman --runtime runc --cgroup-manager=cgroupfs run --rm --platform linux/amd64 --interactive --tty --user 1000:1000 --userns=keep-id --security-opt=no-new-privileges -e HOME=/tmp -e LANG=en_US.UTF-8 -e LC_ALL=en_US.UTF-8 -e TERM -v /home/alice/secretvm:/secret-vm-build -v /home/alice/secretvm/build/secretvm-passwd:/etc/passwd:ro -v /home/alice/secretvm/build/secretvm-group:/etc/group:ro -w /secret-vm-build secretvm-builder:0123456789ab bash -c 'source yocto/poky/oe-init-build-env build >/dev/null && exec "$@"' builder bash
        cd /home/alice/secretvm && env -i PATH=/usr/bin:/bin HOME=/home/alice LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8 TERM=xterm-256color bash -c 'source yocto/poky/oe-init-build-env build >/dev/null && exec "$@"' builder bitbake-layers show-layers"#]]
    .assert_eq(&lines.join("\n"));
}

/// The build-environment command, run by real bash on a stand-in `oe-init-build-env`: the
/// command runs in the build directory with what the script exports, and its words arrive
/// exactly as given, whatever a shell would make of them.
#[test]
#[allow(clippy::disallowed_methods)]
fn the_command_runs_in_the_build_environment_word_for_word() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("poky dir")).unwrap();
    std::fs::write(
        dir.path().join("poky dir/oe-init-build-env"),
        "echo noise from the script\nmkdir -p \"$1\" && cd \"$1\" && BUILDDIR=$(pwd) && export BUILDDIR\n",
    )
    .unwrap();
    let words = ["a b", "$HOME", "'q'", "; false", "*", ""];
    let mut command = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        r#"pwd; echo "$BUILDDIR"; for w in "$@"; do printf '<%s>\n' "$w"; done"#.to_owned(),
        "sh".to_owned(),
    ];
    command.extend(words.map(String::from));
    let argv = in_build_env("poky dir", "my build", &command);
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let build = dir.path().canonicalize().unwrap().join("my build");
    let expected: String = [build.display().to_string(), build.display().to_string()]
        .into_iter()
        .chain(words.iter().map(|w| format!("<{w}>")))
        .map(|l| l + "\n")
        .collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    // A missing program is bash's error, under the command's name.
    let argv = in_build_env("poky dir", "my build", &["no-such-program".to_owned()]);
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("builder: ") && err.contains("no-such-program"), "{err}");
}

/// The account files hold one line per account in the passwd(5) and group(5) shapes, the
/// build user's with its uid and gid; an id that is already root's or nobody's is not listed
/// twice. (getent reads them in the builder in `tests/build_flow.rs`.)
#[test]
fn account_files_list_the_build_user() {
    let [passwd, group] = account_files(User { uid: 1000, gid: 1000 });
    expect![[r#"
        root:x:0:0:root:/root:/bin/bash
        builder:x:1000:1000:secretvm build user:/tmp:/bin/bash
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
    "#]]
    .assert_eq(&passwd);
    expect![[r#"
        root:x:0:
        builder:x:1000:
        nogroup:x:65534:
    "#]]
    .assert_eq(&group);
    for (file, fields) in [(&passwd, 7), (&group, 4)] {
        assert!(file.lines().all(|l| l.split(':').count() == fields), "{file}");
    }
    let [passwd, group] = account_files(User { uid: 65534, gid: 0 });
    let ids = |text: &str| -> Vec<String> {
        text.lines().map(|l| l.split(':').nth(2).unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&passwd), ["0", "65534"]);
    assert_eq!(ids(&group), ["0", "65534"]);
}

/// Every container run gets the account files (read-only, over the image's) and
/// no-new-privileges; only a Docker run that has the network gets CAP_SYS_ADMIN in its
/// bounding set; a native run gets none of it.
#[test]
fn the_task_network_flags_go_where_they_are_needed() {
    let docker = Engine::Docker;
    let podman = Engine::Podman { cgroup: CgroupMode::Unified, rootless: true };
    for engine in [docker, podman, Engine::Native] {
        let config = config();
        let steps = build_steps(tdx_build(engine), &config.cache, false);
        for step in &steps {
            let inv = &step.invocation;
            let etc: Vec<_> =
                inv.mounts.iter().filter(|m| m.container.starts_with("/etc/")).collect();
            let args = engine.plan(inv, "img", &[]).unwrap().args;
            let has = |a: &str| args.iter().any(|x| x == a);
            if engine == Engine::Native {
                assert!(etc.is_empty(), "{etc:?}");
                continue;
            }
            let want = ["/etc/passwd", "/etc/group"];
            assert_eq!(etc.iter().map(|m| m.container.as_str()).collect::<Vec<_>>(), want);
            assert!(etc.iter().all(|m| {
                m.read_only
                    && m.host.starts_with("/home/alice/secretvm/build")
                    && m.host
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("secretvm-"))
            }));
            assert!(has("--security-opt=no-new-privileges"), "{args:?}");
            let networked = step.phase == Phase::Fetch;
            assert_eq!(has("--cap-add=SYS_ADMIN"), engine == docker && networked, "{args:?}");
        }
    }
}

/// The probe run is the build's run with the probe as its command: the same builder, flags,
/// mounts, environment, user and network.
#[test]
fn the_probe_runs_as_the_build_runs() {
    let inv = tdx_build(Engine::Docker);
    let probe = isolation::probe(&inv);
    assert_eq!(probe.argv[..COMMAND_AT], inv.argv[..COMMAND_AT]);
    assert_eq!(probe.argv[COMMAND_AT..], ["python3", "-c", isolation::PROBE]);
    // The program prints the mark the parser looks for (written twice: Rust and Python).
    assert!(isolation::PROBE.contains(&format!("print(\"{}\"", isolation::MARK)));
    assert_eq!(Invocation { argv: inv.argv.clone(), ..probe }, inv);
}

/// The probe's answer is its last marked line; anything else in the output (the engine's own
/// messages, Python warnings) is ignored, and a run that printed no answer is reported with
/// its output.
#[test]
fn the_probe_answer_is_read_from_its_output() {
    use isolation::{Reason, Verdict, verdict};
    let lines = |text: &str| text.lines().map(String::from).collect::<Vec<_>>();
    let ok = Exit::Code(0);
    assert_eq!(
        verdict(
            &lines("WARNING: Couldn't create 'bb.pysh.pyshtables'\nsecretvm-task-network: cut"),
            ok
        ),
        Verdict::Cut
    );
    let cases = [
        ("secretvm-task-network: not-local 1000", Reason::NotLocal("1000".into())),
        (
            "secretvm-task-network: unshare Operation not permitted",
            Reason::Unshare("Operation not permitted".into()),
        ),
        (
            "secretvm-task-network: uid-map [Errno 1] Operation not permitted: '/proc/self/uid_map'",
            Reason::UidMap("[Errno 1] Operation not permitted: '/proc/self/uid_map'".into()),
        ),
        (
            "secretvm-task-network: interfaces eth0,lo uid 1000",
            Reason::Interfaces("eth0,lo uid 1000".into()),
        ),
        (
            "secretvm-task-network: no-bitbake cannot import bb.utils: No module named 'bb'",
            Reason::NoBitbake("cannot import bb.utils: No module named 'bb'".into()),
        ),
    ];
    for (line, reason) in cases {
        assert_eq!(verdict(&lines(line), ok), Verdict::Open(reason), "{line}");
    }
    // Rootless podman 4.3.1 without its network helper: what it printed here, and its status.
    let podman = r#"Error: could not find slirp4netns, the network namespace can't be configured: exec: "slirp4netns": executable file not found in $PATH"#;
    let v = verdict(&lines(podman), Exit::Code(127));
    let Verdict::Open(reason) = v.clone() else { panic!("{v:?}") };
    assert_eq!(reason, Reason::NoAnswer { exit: Exit::Code(127), output: podman.to_owned() });
    let engine = Engine::Podman { cgroup: CgroupMode::Unified, rootless: true };
    let msg = Error::TaskNetwork { engine, reason }.to_string();
    assert!(msg.contains("exit status 127") && msg.contains(podman), "{msg}");
    assert!(msg.contains("install slirp4netns (podman 4) or passt (podman 5)"), "{msg}");
    // With slirp4netns installed, in a sandbox that does not let the user open /dev/net/tun.
    let podman = r#"Error: /usr/bin/slirp4netns failed: "open(\"/dev/net/tun\"): Permission denied\nWARNING: Support for seccomp is experimental\nWARNING: Support for IPv6 is experimental\nchild failed(1)\n""#;
    let Verdict::Open(reason) = verdict(&lines(podman), Exit::Code(127)) else { panic!() };
    let msg = Error::TaskNetwork { engine, reason }.to_string();
    assert!(msg.contains("could not open /dev/net/tun: load the tun module"), "{msg}");
}
