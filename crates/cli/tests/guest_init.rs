//! The Google Cloud TDX `/init` of `meta-secret`, unmodified, run by a real Linux kernel under
//! QEMU: it must find the config disk and the root partition by label, copy the config into
//! guest memory, extend RTMR3 with the SHA-256 of `docker-compose.yaml` and of the root
//! partition (in that order, with `secretvm-guest extend-rtmr 3 <hex>`), mount the root
//! read-only under a tmpfs overlay and hand over to its `/usr/sbin/init`, which must see the
//! measured copy at `/mnt/config` and the live config at `/mnt/config-source`. Without a
//! `docker-compose.yaml` it must refuse to boot.
//!
//! `secretvm-guest` is the layer's real program (built here, statically), pointed by a small
//! wrapper at regular files standing in for the kernel's register files, which a TCG guest does
//! not have (a regular file keeps the bytes of the write, so the console shows exactly what
//! would have been extended). For the TDX init, `attest-tool` is a stand-in that prints its
//! arguments. The expected digests come from the real `sha256sum` of the disk images and the compose file,
//! and the disks are made by the real `mkfs.ext4`. A small wrapper loads the kernel modules the
//! Debian test kernel has as modules (Yocto's kernel builds them in), then execs the real
//! `/init`.
//!
//! The TDX and SEV inits boot the same way from a 9p config share. The TDX boot runs once with
//! stand-ins, and once with the layer's real tdx-guest module, built against the test kernel's
//! headers, which must refuse to load in a guest that is no TD and so stop the boot.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::boot::{Guest, find_module};
use crate::support::{run_ok, secretvm, tool_on_path};

/// The layer's init scripts, as the initramfs recipe installs them.
const LAYER: &str = "meta-secret/recipes-core/secret-vm-initramfs-files/files";

/// Loads the modules (the virtio ones, overlay, then `modules` in order), then runs the layer's
/// `/init` as PID 1.
fn gcp_wrapper(modules: &[(String, PathBuf)]) -> String {
    let names: Vec<&str> = modules.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "#!/bin/sh\n/bin/busybox --install -s /bin\nmount -t sysfs sys /sys\n\
         for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
         virtio_blk overlay {}; do\n  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko\ndone\n\
         i=0; while [ ! -e /sys/block/vdb ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n\
         umount /sys\nexec /init-gcp-tdx\n",
        names.join(" ")
    )
}

/// What `pin_os_image` of the layer's init library needs: the modules dm-verity and the loop
/// device need, dependencies first (the Debian test kernels build them as modules; the
/// layer's kernels build them in), as (name, path); and the initramfs lines that install them.
fn verity_modules(guest: &Guest) -> (Vec<(String, PathBuf)>, String) {
    let modules = guest.modules_with_deps(&["dm-verity", "loop"]);
    let lines = module_lines(&modules);
    (modules, lines)
}

/// The initramfs lines that install `modules` (name, path) as `/lib/modules/<name>.ko`.
fn module_lines(modules: &[(String, PathBuf)]) -> String {
    modules
        .iter()
        .map(|(name, path)| format!("file /lib/modules/{name}.ko {} 0644 0 0\n", path.display()))
        .collect()
}

/// The initramfs lines that install host `programs` (path in the image, path on the host) with
/// the shared libraries `ldd` names for them, each library once, at the host's paths, and the
/// directories they need below `/usr` and `/lib`.
fn programs(dir: &Path, programs: &[(&str, &Path)]) -> String {
    let mut libraries = std::collections::BTreeSet::new();
    for (_, host) in programs {
        let ldd = sh(dir, &format!("ldd {}", host.display()));
        for lib in ldd.lines().filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/'))) {
            libraries.insert(lib.to_owned());
        }
    }
    let mut dirs = std::collections::BTreeSet::new();
    for path in programs.iter().map(|(to, _)| *to).chain(libraries.iter().map(String::as_str)) {
        let mut parent = Path::new(path).parent();
        while let Some(p) = parent.filter(|p| !["/", "/lib", "/bin"].contains(&p.to_str().unwrap()))
        {
            dirs.insert(p.to_path_buf());
            parent = p.parent();
        }
    }
    let mut out: String = dirs.iter().map(|d| format!("dir {} 0755 0 0\n", d.display())).collect();
    for (to, host) in programs {
        out.push_str(&format!("file {to} {} 0755 0 0\n", host.display()));
    }
    for lib in &libraries {
        let real = fs::canonicalize(lib).unwrap();
        out.push_str(&format!("file {lib} {} 0755 0 0\n", real.display()));
    }
    out
}

/// Stands in for secret-vm-ops' attest-tool: prints what it was asked to do.
const ATTEST_TOOL: &str = "#!/bin/sh\necho \"ATTEST-TOOL $*\"\n";

/// Runs the real secretvm-guest; its register commands on regular files standing in for the
/// kernel's register files.
const SECRETVM_GUEST: &str = r#"#!/bin/sh
case $1 in
extend-rtmr | show-mrs)
  mkdir -p /tmp/measurements
  for r in 0 1 2 3; do [ -e /tmp/measurements/rtmr$r:sha384 ] || : > /tmp/measurements/rtmr$r:sha384; done
  exec /usr/libexec/secretvm-guest "$@" --measurements /tmp/measurements
esac
exec /usr/libexec/secretvm-guest "$@"
"#;

/// The layer's secretvm-guest, built statically (the initramfs has no C library of its own).
pub(crate) fn secretvm_guest_binary() -> PathBuf {
    let root = secretvm_testkit::workspace();
    let package = root.join("meta-secret/recipes-core/secretvm-guest/files/secretvm-guest");
    let target = root.join("target/guest");
    run_ok(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "--release", "--locked"])
            .args(["--target", "x86_64-unknown-linux-gnu", "--manifest-path"])
            .arg(package.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env("RUSTFLAGS", "-C target-feature=+crt-static"),
    );
    target.join("x86_64-unknown-linux-gnu/release/secretvm-guest")
}

/// The root partition's init: report what the workload would see, then power off.
const ROOT_INIT: &str = r#"#!/bin/sh
/bin/busybox --install -s /bin
echo BEGIN root
echo "compose: $(cat /mnt/config/docker-compose.yaml)"
[ -d /mnt/config-source ] && echo "config-source: $(cat /mnt/config-source/docker-compose.yaml)"
grep -E ' /mnt/config(-source)? ' /proc/mounts | cut -d' ' -f2,3
echo "root writable: $(echo x > /probe && cat /probe)"
echo END root
echo SECRETVM-ROOT-OK
# secretvm_test_tamper=DEVICE,BLOCK,COUNT: play the host, which rewrites the OS image under
# the running guest (the test attaches it writable): zero COUNT 2048-byte blocks from BLOCK
# (the test names /data.bin's), drop the caches, then read /data.bin, which no step read before.
tamper=$(sed -n 's/.*secretvm_test_tamper=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$tamper" ]; then
  IFS=, read -r dev block count <<EOF
$tamper
EOF
  dd if=/dev/zero of="$dev" bs=2048 seek="$block" count="$count" conv=notrunc 2>/dev/null
  sync
  echo 3 > /proc/sys/vm/drop_caches
  echo "tamper raw: $(dd if="$dev" bs=2048 skip="$block" count="$count" 2>/dev/null | sha256sum)"
  if cat /data.bin > /run/read; then echo "tamper read: ok"; else echo "tamper read: failed"; fi
  echo "tamper got: $(sha256sum < /run/read)"
fi
poweroff -f
"#;

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{script}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256sum(dir: &Path, file: &str) -> String {
    sh(dir, &format!("sha256sum {file}")).split_whitespace().next().unwrap().to_owned()
}

/// The initramfs: busybox, the modules, the wrapper, the layer's scripts where the recipe puts
/// them, and secretvm-guest with its wrapper.
fn initramfs(guest: &Guest, dir: &Path) -> std::path::PathBuf {
    let layer = secretvm_testkit::workspace().join(LAYER);
    let mut extra = String::from("dir /lib/modules/extra 0755 0 0\n");
    let overlay = find_module(guest.modules(), "overlay").expect("the test kernel has overlay");
    extra.push_str(&format!("file /lib/modules/overlay.ko {} 0644 0 0\n", overlay.display()));
    for (to, from) in [
        ("/init-gcp-tdx", "init-gcp-tdx"),
        ("/lib/secret-vm-init.sh", "secret-vm-init.sh"),
        ("/lib/secret-vm-tdx.sh", "secret-vm-init-tdx.sh"),
    ] {
        extra.push_str(&format!("file {to} {} 0755 0 0\n", layer.join(from).display()));
    }
    // util-linux blkid, as the image installs it (util-linux-blkid), with its libraries; the
    // modules dm-verity needs.
    let blkid = tool_on_path("blkid").expect("util-linux blkid");
    extra.push_str(&programs(dir, &[("/usr/sbin/blkid", &blkid)]));
    let (verity, lines) = verity_modules(guest);
    extra.push_str(&lines);
    fs::write(dir.join("secretvm-guest"), SECRETVM_GUEST).unwrap();
    extra.push_str(&format!(
        "file /bin/secretvm-guest {} 0755 0 0\ndir /usr/libexec 0755 0 0\n\
         file /usr/libexec/secretvm-guest {} 0755 0 0\n",
        dir.join("secretvm-guest").display(),
        secretvm_guest_binary().display()
    ));
    let spec = guest.spec(dir, &gcp_wrapper(&verity), &extra);
    let out = dir.join("initramfs.cpio.gz");
    run_ok(secretvm().args(["pack", "initramfs", "--spec"]).arg(&spec).arg("-o").arg(&out));
    out
}

#[test]
fn the_gcp_tdx_init_measures_a_copy_of_the_config_and_boots_the_root() {
    let Some(guest) = Guest::from_env() else { return };
    let Some(_) = tool_on_path("mkfs.ext4") else { return };
    let Some(busybox) = tool_on_path("busybox") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let initrd = initramfs(&guest, dir);

    // The root partition: busybox and an init that reports what it sees.
    fs::create_dir_all(dir.join("root/bin")).unwrap();
    fs::create_dir_all(dir.join("root/usr/sbin")).unwrap();
    for d in ["proc", "sys", "dev", "run", "mnt", "tmp"] {
        fs::create_dir_all(dir.join("root").join(d)).unwrap();
    }
    fs::copy(&busybox, dir.join("root/bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("root/bin/sh")).unwrap();
    fs::write(dir.join("root/usr/sbin/init"), ROOT_INIT).unwrap();
    sh(dir, "chmod 755 root/usr/sbin/init && mkfs.ext4 -q -F -L root -d root root.img 24M");
    // The config disk.
    fs::create_dir_all(dir.join("config")).unwrap();
    fs::write(dir.join("config/docker-compose.yaml"), "services: {app: {image: busybox}}\n")
        .unwrap();
    sh(dir, "mkfs.ext4 -q -F -L GUEST_CONFIG -d config config.img 8M");
    let compose = sha256sum(dir, "config/docker-compose.yaml");
    let rootfs = sha256sum(dir, "root.img");

    let drives = |config: &str| {
        [
            "-drive".to_owned(),
            format!("file={},if=virtio,format=raw,readonly=on", dir.join("root.img").display()),
            "-drive".to_owned(),
            format!("file={},if=virtio,format=raw", dir.join(config).display()),
        ]
    };
    let args = drives("config.img");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let console = guest.boot_with(&initrd, &args, "console=ttyS0 panic=-1");

    // RTMR3: the compose file, then the root partition, each once and in that order, each
    // sha256 zero-padded to 48 bytes; then the registers for the log.
    let extends: Vec<&str> = console.lines().filter(|l| l.starts_with("extended rtmr")).collect();
    let padded = |sha256: &str| format!("{sha256}{}", "0".repeat(32));
    assert_eq!(
        extends,
        [compose.as_str(), rootfs.as_str()].map(|h| format!(
            "extended rtmr3:sha384 with {}; it is now {}",
            padded(h),
            padded(h)
        )),
        "{console}"
    );
    assert!(console.contains(&format!("rtmr3:sha384 {}", padded(&rootfs))), "{console}");
    assert!(console.contains("SECRETVM-ROOT-OK"), "the root did not start:\n{console}");
    let root = crate::boot::section(&console, "root");
    assert!(root.contains(&"compose: services: {app: {image: busybox}}"), "{console}");
    assert!(root.contains(&"config-source: services: {app: {image: busybox}}"), "{console}");
    // The workload's config is the in-memory copy; the live disk is elsewhere.
    assert!(root.contains(&"/mnt/config tmpfs"), "{console}");
    assert!(root.contains(&"/mnt/config-source ext4"), "{console}");
    assert!(root.contains(&"root writable: x"), "{console}");

    // No docker-compose.yaml: the init refuses to boot.
    fs::remove_file(dir.join("config/docker-compose.yaml")).unwrap();
    fs::write(dir.join("config/other"), "x").unwrap();
    sh(dir, "mkfs.ext4 -q -F -L GUEST_CONFIG -d config config-bad.img 8M");
    let args = drives("config-bad.img");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let console = guest.boot_with(&initrd, &args, "console=ttyS0 panic=-1");
    assert!(console.contains("secret-vm init: FATAL: cannot hash"), "{console}");
    assert!(!console.contains("extended rtmr"), "{console}");
    assert!(!console.contains("SECRETVM-ROOT-OK"), "{console}");
}

/// Loads the virtio, 9p, isofs and overlay modules (in dependency order), shows the OS image
/// disk as `/dev/sr0` (the tests attach it as a virtio disk), then runs the layer's `init` as
/// PID 1.
fn virtfs_wrapper(modules: &[(String, std::path::PathBuf)], init: &str) -> String {
    let names: Vec<&str> = modules.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "#!/bin/sh\n/bin/busybox --install -s /bin\nmount -t sysfs sys /sys\n\
         for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci \
         virtio_blk {}; do\n  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko\ndone\n\
         i=0; while [ ! -e /sys/block/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n\
         umount /sys\nmount -t devtmpfs dev /dev\nln -s vda /dev/sr0\numount /dev\n\
         exec /{init}\n",
        names.join(" ")
    )
}

/// A guest for the inits that read the config from 9p: the generic kernel's modules (the loop
/// device's, and device-mapper's and dm-verity's only with `verity`), the layer's `init` and
/// shared scripts as the recipe installs them, the real `secretvm-guest`, and `stubs` (name,
/// script) put in `/sbin`, which comes before busybox's `/bin` on the shell's default PATH.
/// Returns the initramfs.
fn virtfs_initramfs(
    guest: &Guest,
    dir: &Path,
    init: &str,
    stubs: &[(&str, &str)],
    more: &str,
    verity: bool,
) -> PathBuf {
    let layer = secretvm_testkit::workspace().join(LAYER);
    let mut names = vec!["9p", "9pnet_virtio", "isofs", "overlay", "loop"];
    if verity {
        names.push("dm-verity");
    }
    // The base initramfs already carries the virtio modules.
    let mut modules = guest.modules_with_deps(&names);
    modules.retain(|(name, _)| !crate::boot::MODULES.contains(&name.as_str()));
    let mut extra = String::from("dir /sbin 0755 0 0\n");
    extra.push_str(&module_lines(&modules));
    extra.push_str(&format!(
        "dir /usr 0755 0 0\ndir /usr/bin 0755 0 0\nfile /usr/bin/secretvm-guest {} 0755 0 0\n",
        secretvm_guest_binary().display()
    ));
    for (to, from) in [
        (format!("/{init}"), init),
        ("/lib/secret-vm-init.sh".to_owned(), "secret-vm-init.sh"),
        ("/lib/secret-vm-tdx.sh".to_owned(), "secret-vm-init-tdx.sh"),
    ] {
        extra.push_str(&format!("file {to} {} 0755 0 0\n", layer.join(from).display()));
    }
    for (name, script) in stubs {
        let path = dir.join(format!("stub-{name}"));
        fs::write(&path, script).unwrap();
        extra.push_str(&format!("file /sbin/{name} {} 0755 0 0\n", path.display()));
    }
    extra.push_str(more);
    let spec = guest.spec(dir, &virtfs_wrapper(&modules, init), &extra);
    let initrd = dir.join("initramfs.cpio.gz");
    run_ok(secretvm().args(["pack", "initramfs", "--spec"]).arg(&spec).arg("-o").arg(&initrd));
    initrd
}

/// The OS image: our own ISO of a root with busybox and [`ROOT_INIT`], at `dir/root.iso`.
fn os_image(dir: &Path, busybox: &Path) -> PathBuf {
    let root = dir.join("root");
    for d in ["bin", "usr/sbin", "proc", "sys", "dev", "run", "mnt", "tmp"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy(busybox, root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    fs::write(root.join("usr/sbin/init"), ROOT_INIT).unwrap();
    // A file no boot step reads, for the tamper test.
    fs::write(root.join("data.bin"), (0..200_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>())
        .unwrap();
    sh(dir, "chmod 755 root/usr/sbin/init");
    crate::support::pack_cpio(&root, &dir.join("root.cpio"));
    let iso = dir.join("root.iso");
    run_ok(
        secretvm()
            .args(["pack", "iso", "--source-date-epoch", "1700000000", "-o"])
            .arg(&iso)
            .arg(dir.join("root.cpio")),
    );
    iso
}

/// The QEMU arguments of a 9p guest: the OS image as a virtio disk (read-only, as a cdrom is,
/// unless a test plays a host that writes to it), `config` as the `guest_config` share.
fn virtfs_args(iso: &Path, config: &Path, readonly: bool) -> [String; 4] {
    let readonly = if readonly { ",readonly=on" } else { "" };
    [
        "-drive".to_owned(),
        format!("file={},if=virtio,format=raw{readonly}", iso.display()),
        "-virtfs".to_owned(),
        format!("local,path={},mount_tag=guest_config,security_model=none", config.display()),
    ]
}

/// What a boot of `init-sev` needs, in `tmp`: the initramfs (with device-mapper and dm-verity
/// only with `verity`), the OS image, a config share holding a docker-compose.yaml, and the
/// sha256 of the compose file and of the image.
struct SevBoot {
    tmp: tempfile::TempDir,
    initrd: PathBuf,
    iso: PathBuf,
    config: PathBuf,
    compose: String,
    rootfs: String,
}

fn sev_boot(guest: &Guest, busybox: &Path, verity: bool) -> SevBoot {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let initrd = virtfs_initramfs(guest, dir, "init-sev", &[], "", verity);
    let iso = os_image(dir, busybox);
    let config = dir.join("config");
    fs::create_dir_all(&config).unwrap();
    fs::write(config.join("docker-compose.yaml"), "services: {app: {image: busybox}}\n").unwrap();
    let compose = sha256sum(dir, "config/docker-compose.yaml");
    let rootfs = sha256sum(dir, "root.iso");
    SevBoot { tmp, initrd, iso, config, compose, rootfs }
}

#[test]
fn the_sev_init_boots_only_what_the_measured_cmdline_names() {
    let Some(guest) = Guest::generic_from_env() else { return };
    let Some(busybox) = tool_on_path("busybox") else { return };
    let SevBoot { tmp: _tmp, initrd, iso, config, compose, rootfs } =
        sev_boot(&guest, &busybox, true);
    let args = virtfs_args(&iso, &config, true);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let boot =
        |hashes: &str| guest.boot_with(&initrd, &args, &format!("console=ttyS0 panic=-1 {hashes}"));

    // The cmdline names exactly these files: the root starts and sees the measured copy.
    let console = boot(&format!("docker_compose_hash={compose} rootfs_hash={rootfs}"));
    assert!(console.contains("SECRETVM-ROOT-OK"), "the root did not start:\n{console}");
    let seen = crate::boot::section(&console, "root");
    assert!(seen.contains(&"compose: services: {app: {image: busybox}}"), "{console}");
    assert!(seen.contains(&"/mnt/config tmpfs"), "{console}");
    assert!(seen.contains(&"/mnt/config-source 9p"), "{console}");

    // Each way the measured cmdline can disagree with what the host provides stops the boot.
    let other = "0".repeat(64);
    for (hashes, why) in [
        (
            format!("docker_compose_hash={other} rootfs_hash={rootfs}"),
            "does not match docker_compose_hash",
        ),
        (
            format!("docker_compose_hash={compose} rootfs_hash={other}"),
            "does not match rootfs_hash",
        ),
        (
            format!("docker_compose_hash={compose} rootfs_hash={rootfs} rootfs_hash={rootfs}"),
            "rootfs_hash= must appear exactly once",
        ),
        (
            format!(
                "docker_compose_hash={compose} rootfs_hash={rootfs} \
                 docker_additional_files_hash={other}"
            ),
            "expects docker-files.tar",
        ),
    ] {
        let console = boot(&hashes);
        assert!(console.contains("secret-vm init: FATAL:"), "{hashes}:\n{console}");
        assert!(console.contains(why), "{hashes}: expected {why:?}:\n{console}");
        assert!(!console.contains("SECRETVM-ROOT-OK"), "{hashes}: booted anyway:\n{console}");
    }
}

/// A kernel without device-mapper cannot pin the OS image (the hash tree is built and put on a
/// loop device, then the mapping fails), and the init must not boot it unpinned:
/// `secretvm-guest` names what it could not open and the boot stops before the image's cmdline
/// check, let alone the root.
#[test]
fn the_sev_init_does_not_boot_an_os_image_it_cannot_pin() {
    let Some(guest) = Guest::generic_from_env() else { return };
    let Some(busybox) = tool_on_path("busybox") else { return };
    let SevBoot { tmp: _tmp, initrd, iso, config, compose, rootfs } =
        sev_boot(&guest, &busybox, false);
    let args = virtfs_args(&iso, &config, true);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cmdline =
        format!("console=ttyS0 panic=-1 docker_compose_hash={compose} rootfs_hash={rootfs}");
    let console = guest.boot_with(&initrd, &args, &cmdline);
    assert!(
        console.contains("secretvm-guest: error: cannot pin the OS image /dev/sr0: mapping it")
            && console.contains("opening /dev/mapper/control"),
        "secretvm-guest did not say what it lacked:\n{console}"
    );
    assert!(
        console.contains(
            "secret-vm init: FATAL: cannot hash the rootfs image /dev/sr0 and pin it under dm-verity"
        ),
        "{console}"
    );
    assert!(!console.contains("rootfs_hash: expected"), "checked an unpinned image:\n{console}");
    assert!(!console.contains("SECRETVM-ROOT-OK"), "booted anyway:\n{console}");
}

#[test]
fn the_tdx_init_extends_rtmr3_with_compose_rootfs_and_docker_files_in_order() {
    let Some(guest) = Guest::generic_from_env() else { return };
    let Some(busybox) = tool_on_path("busybox") else { return };
    let TdxBoot { tmp, initrd, iso, config } = tdx_boot(&guest, &busybox);
    let dir = tmp.path();
    fs::write(config.join("docker-files.tar"), vec![7u8; 10_240]).unwrap();
    let want = [
        format!("ATTEST-TOOL extendrt 3 {}", sha256sum(dir, "config/docker-compose.yaml")),
        format!("ATTEST-TOOL extendrt 3 {}", sha256sum(dir, "root.iso")),
        format!("ATTEST-TOOL extendrt 3 {}", sha256sum(dir, "config/docker-files.tar")),
    ];
    let args = virtfs_args(&iso, &config, true);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let console = guest.boot_with(&initrd, &args, "console=ttyS0 panic=-1");
    assert!(!console.contains("FATAL"), "{console}");
    let extends: Vec<&str> =
        console.lines().filter(|l| l.starts_with("ATTEST-TOOL extendrt")).collect();
    assert_eq!(extends, want, "{console}");
    assert!(console.contains("SECRETVM-ROOT-OK"), "the root did not start:\n{console}");
    assert!(crate::boot::section(&console, "root").contains(&"/mnt/config tmpfs"), "{console}");
}

/// What a boot of `init-tdx` with the stand-ins needs, in `tmp`.
struct TdxBoot {
    tmp: tempfile::TempDir,
    initrd: PathBuf,
    iso: PathBuf,
    /// The config share, holding a docker-compose.yaml.
    config: PathBuf,
}

/// The `init-tdx` initramfs with the stand-ins, the OS image and a config share. The TDX-only
/// steps: `depmod -a` and `modprobe tdx-guest` run busybox's applets (which its shell prefers
/// to anything on PATH), so the module tree holds a stand-in `tdx-guest.ko`: a copy of the
/// harmless, dependency-free cdrom driver. attest-tool prints its arguments.
fn tdx_boot(guest: &Guest, busybox: &Path) -> TdxBoot {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cdrom = find_module(guest.modules(), "cdrom").expect("the generic kernel has cdrom");
    let initrd = tdx_initramfs(guest, dir, &cdrom);
    let iso = os_image(dir, busybox);
    let config = dir.join("config");
    fs::create_dir_all(&config).unwrap();
    fs::write(config.join("docker-compose.yaml"), "services: {app: {image: busybox}}\n").unwrap();
    TdxBoot { tmp, initrd, iso, config }
}

/// The `init-tdx` initramfs with `module` as the `tdx-guest.ko` that its `modprobe tdx-guest`
/// (busybox's applet, which its shell prefers to anything on PATH) loads, and the attest-tool
/// stand-in.
fn tdx_initramfs(guest: &Guest, dir: &Path, module: &Path) -> PathBuf {
    let version = guest.modules().file_name().unwrap().to_string_lossy().into_owned();
    let more = format!(
        "dir /lib/modules/{version} 0755 0 0\nfile /lib/modules/{version}/tdx-guest.ko {} 0644 0 0\n",
        module.display()
    );
    virtfs_initramfs(guest, dir, "init-tdx", &[("attest-tool", ATTEST_TOOL)], &more, true)
}

/// The host changes the OS image after the init measured it (the blocks of one file of the root,
/// zeroed): the guest's read of that file then fails (dm-verity, set up by the init's
/// `pin_os_image`) instead of returning the new bytes, while the raw device does hold them (the
/// zeros, as `sha256sum` of as many zero bytes on the host says). Without the pin the read
/// returns the zeros (checked by hand, by making `init-tdx` skip it).
#[test]
fn a_changed_os_image_is_not_read_after_it_was_measured() {
    let Some(guest) = Guest::generic_from_env() else { return };
    let Some(busybox) = tool_on_path("busybox") else { return };
    let TdxBoot { tmp, initrd, iso, config } = tdx_boot(&guest, &busybox);
    let dir = tmp.path();
    // Where /data.bin's bytes are in the ISO (a file's extent starts on a 2048-byte block).
    let data = fs::read(dir.join("root/data.bin")).unwrap();
    let image = fs::read(&iso).unwrap();
    let at = image.windows(4096).position(|w| w == &data[..4096]).expect("data.bin in the ISO");
    assert_eq!(at % 2048, 0, "data.bin starts inside a block");
    let (block, count) = (at / 2048, data.len().div_ceil(2048));
    let zeros = |n: usize| sh(dir, &format!("head -c {n} /dev/zero | sha256sum"));
    let (zero_blocks, zero_file) = (zeros(count * 2048), zeros(data.len()));
    let args = virtfs_args(&iso, &config, false);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let console = guest.boot_with(
        &initrd,
        &args,
        &format!("console=ttyS0 panic=-1 secretvm_test_tamper=/dev/vda,{block},{count}"),
    );
    assert!(console.contains("SECRETVM-ROOT-OK"), "the root did not start:\n{console}");
    // The host's change reached the device...
    assert!(console.contains(&format!("tamper raw: {zero_blocks}")), "{console}");
    // ...and the guest reads neither it nor anything else from the changed blocks.
    assert!(console.contains("tamper read: failed"), "{console}");
    assert!(console.contains("verity") && console.contains("is corrupted"), "{console}");
    assert!(!console.contains(&format!("tamper got: {zero_file}")), "{console}");
    let image = fs::read(&iso).unwrap();
    assert!(image[at..at + count * 2048].iter().all(|&b| b == 0), "the image was not changed");
}

/// The layer's own tdx-guest module, built from `meta-secret/recipes-kernel/tdx-guest/files`
/// against the headers of the kernel the boot tests run (`SECRETVM_GENERIC_KERNEL_HEADERS`),
/// the way poky's module class drives its Makefile; kbuild at W=1 must warn about nothing.
/// Returns the `.ko`.
fn build_tdx_guest_module(dir: &Path, headers: &Path) -> PathBuf {
    let src = secretvm_testkit::workspace().join("meta-secret/recipes-kernel/tdx-guest/files");
    let build = dir.join("tdx-guest-module");
    fs::create_dir_all(&build).unwrap();
    for name in ["Makefile", "tdx-guest.c"] {
        fs::copy(src.join(name), build.join(name)).unwrap();
    }
    let out = Command::new("make")
        .arg(format!("KERNEL_SRC={}", headers.display()))
        .arg("W=1")
        .arg("modules")
        .current_dir(&build)
        .output()
        .unwrap();
    let log =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the tdx-guest module does not build:\n{log}");
    assert!(!log.contains("warning:"), "the tdx-guest module builds with warnings:\n{log}");
    build.join("tdx-guest.ko")
}

#[test]
fn the_tdx_init_stops_when_the_real_tdx_guest_module_finds_no_tdx() {
    let Some(guest) = Guest::generic_from_env() else { return };
    let Some(busybox) = tool_on_path("busybox") else { return };
    let Some(headers) = secretvm_testkit::tool_from_env("SECRETVM_GENERIC_KERNEL_HEADERS") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let module = build_tdx_guest_module(dir, &headers);
    // The real module where the init's `modprobe tdx-guest` finds it. This guest is no TD, so
    // the module must refuse to load, and the init must stop before measuring anything.
    let initrd = tdx_initramfs(&guest, dir, &module);
    let iso = os_image(dir, &busybox);
    let config = dir.join("config");
    fs::create_dir_all(&config).unwrap();
    fs::write(config.join("docker-compose.yaml"), "services: {app: {image: busybox}}\n").unwrap();
    let args = virtfs_args(&iso, &config, true);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let console = guest.boot_with(&initrd, &args, "console=ttyS0 panic=-1");
    assert!(
        console.contains("tdx-guest: not a TDX guest, /dev/tdx_guest not created"),
        "the module's init did not run:\n{console}"
    );
    assert!(console.contains("secret-vm init: FATAL:"), "{console}");
    assert!(console.contains("modprobe tdx-guest"), "{console}");
    assert!(!console.contains("ATTEST-TOOL"), "measured without the module:\n{console}");
    assert!(!console.contains("SECRETVM-ROOT-OK"), "booted anyway:\n{console}");
}
