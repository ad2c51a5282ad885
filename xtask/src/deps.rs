//! What the tests need from outside Cargo, and how it gets onto the machine.
//!
//! Two kinds of things:
//! - Debian packages installed with `apt-get` (root only; otherwise we print the exact command and
//!   stop): GNU cpio and bsdtar (independent readers of our archives), busybox (the userland of the
//!   boot test's initramfs), qemu-img (the reference for qcow2 images), the shared libraries of
//!   the emulator, and podman, runc and debootstrap for the Yocto runner's engine tests (Docker
//!   itself is not installed here: the machine provides the engine and its daemon), and
//!   `linux-headers-<version>` of the generic kernel below, to build the layer's tdx-guest module
//!   for the kernel the boot test runs, and `linux-source-6.12` with flex and bison, whose
//!   tarball is unpacked under `target/tools/` for the kernel config-fragment test.
//! - Packages fetched with `apt-get download` and unpacked under `target/tools/` without
//!   installing them (no root needed): a Debian cloud kernel with its modules, the generic
//!   Debian kernel (it has 9p, which the SEV init boot test needs), and, unless a
//!   `qemu-system-x86_64` is already on `PATH`, the emulator. The emulator is unpacked rather than
//!   installed because Debian's bookworm `qemu-system-common` (7.2) cannot be installed next to
//!   the backported `qemu-utils` 10 that provides `qemu-img`: the latter declares
//!   `Breaks: qemu-system-common (<< 8.0)`. Docker's `check-config.sh` comes the same way from
//!   the docker.io package when that is not installed.
//!
//! - sev-snp-measure, pinned, from PyPI into a virtualenv under `target/tools/` (the reference
//!   for the SEV-SNP differential test).
//! - bitbake-setup, pinned, from PyPI into a virtualenv under `target/tools/`: its `bb` package
//!   is BitBake's own parser, which the layer test runs on `meta-secret/`.
//!
//! The result is a set of environment variables (`SECRETVM_QEMU`, `SECRETVM_KERNEL`,
//! `SECRETVM_KERNEL_MODULES`, `SECRETVM_GENERIC_KERNEL`, `SECRETVM_GENERIC_KERNEL_MODULES`,
//! `SECRETVM_GENERIC_KERNEL_HEADERS`, `SECRETVM_BUSYBOX`, `SECRETVM_SEV_SNP_MEASURE`,
//! `SECRETVM_BITBAKE_PYTHON`, `SECRETVM_SCARTHGAP_PYTHON`, `SECRETVM_PYPI_WHEELS`, `SECRETVM_CRATE_MIRROR`, `SECRETVM_KERNEL_SOURCE`, `SECRETVM_DOSFSTOOLS_SOURCE`, `SECRETVM_DOCKER_CHECK_CONFIG`, and as root `SECRETVM_TSM_KERNEL` and `SECRETVM_TSM_MODULES` (a kernel with the measurement-register sysfs and the module that feeds it) and `SECRETVM_ROOTLESS_USER`, the unprivileged account
//! made here for the rootless-podman test) that the tests read.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Flags of `cargo xtask deps`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Only report what is missing; install nothing.
    #[arg(long)]
    check: bool,
}

/// Debian packages the tests use, each with the reason.
const PACKAGES: &[(&str, &str)] = &[
    ("cpio", "GNU cpio lists our archives independently (`cpio -itv`)"),
    ("libarchive-tools", "bsdtar lists our archives independently"),
    ("busybox-static", "the userland of the initramfs that the boot test runs"),
    ("qemu-utils", "qemu-img is the reference for qcow2 images"),
    ("dpkg", "dpkg-deb unpacks the downloaded kernel and emulator"),
    ("tzdata", "the time zones the mkfs.fat test compares images across"),
    ("xorriso", "xorriso reads our ISO images independently (`-find / -exec lsdl`)"),
    ("genisoimage", "isoinfo lists our ISO images independently (`isoinfo -R -l`)"),
    ("python3-venv", "sev-snp-measure, the SEV-SNP reference, runs from a virtualenv"),
    ("shellcheck", "checks the POSIX sh of the initramfs /init scripts in meta-secret"),
    ("debootstrap", "makes the Debian base image of the container-engine tests (no registry)"),
    ("podman", "the second container engine the Yocto runner is tested with"),
    ("runc", "podman's runtime on hosts with cgroup v1 or hybrid cgroups (crun refuses them)"),
    ("uidmap", "newuidmap/newgidmap for rootless podman"),
    ("slirp4netns", "the network of a rootless podman container (podman 4's helper)"),
    ("e2fsprogs", "mkfs.ext4 makes the disks the guest-init boot test labels and boots"),
    ("util-linux", "blkid in the guest-init boot test, as the gcp-tdx initramfs installs it"),
    ("cryptsetup-bin", "veritysetup, the reference for secretvm-guest's dm-verity hash trees"),
    (
        "linux-libc-dev",
        "the kernel's UAPI headers, against which secretvm-guest's ioctl structures are checked",
    ),
    ("binutils", "readelf checks, and objdump reads, the NVIDIA recipe's libraries in its test"),
    (KERNEL_SOURCE_PACKAGE, "the kernel's own Kconfig checks our kernel config fragments"),
    ("flex", "builds the kernel's Kconfig tool for the config-fragment test"),
    ("bison", "builds the kernel's Kconfig tool for the config-fragment test"),
    ("gpg", "makes the keys of the signed-sstate tests and checks their signatures"),
    ("gpg-agent", "holds the secret keys gpg imports and signs with in those tests"),
    (
        "faketime",
        "runs NVIDIA's RIM check at a time when its signed samples' certificates were valid",
    ),
];

/// The Debian kernel source package whose Kconfig the config-fragment test runs; its tarball
/// is unpacked under `target/tools/`.
const KERNEL_SOURCE_PACKAGE: &str = "linux-source-6.12";

/// The Python libraries of the pinned layers, for the wheel recipes' test.
const SCARTHGAP_PYTHON_LIST: &str = "crates/yocto/tests/fixtures/scarthgap-python.txt";

/// Packages unpacked (not installed) to provide the emulator, with its firmware.
const EMULATOR_PACKAGES: &[&str] =
    &["qemu-system-x86", "qemu-system-common", "qemu-system-data", "seabios", "ipxe-qemu"];

/// The metapackage whose dependency names the current Debian cloud kernel. The cloud flavour is
/// small and ships the virtio, isofs and overlay drivers as uncompressed modules.
const KERNEL_METAPACKAGE: &str = "linux-image-cloud-amd64";

/// The generic Debian kernel, for the boot tests that need what the cloud flavour lacks: 9p
/// (QEMU's -virtfs, the SEV and TDX config share).
const GENERIC_KERNEL_METAPACKAGE: &str = "linux-image-amd64";

/// Paths of the provisioned tools, as environment variables for the test processes.
pub(crate) struct Tools {
    pub(crate) env: Vec<(&'static str, PathBuf)>,
}

impl Tools {
    /// The path provisioned under the environment variable `key`.
    pub(crate) fn get(&self, key: &str) -> Result<&Path> {
        self.env
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_path())
            .with_context(|| format!("{key} is not provisioned: run `cargo xtask deps`"))
    }
}

pub(crate) fn run(root: &Path, args: &Args) -> Result<Tools> {
    let tools = ensure(root, !args.check)?;
    for (key, value) in &tools.env {
        println!("{key}={}", value.display());
    }
    Ok(tools)
}

/// Makes sure everything the tests need is present, installing it when `install` is set and we
/// can; returns where the tools are.
pub(crate) fn ensure(root: &Path, install: bool) -> Result<Tools> {
    if cmd::on_path("dpkg-query").is_none() || cmd::on_path("apt-get").is_none() {
        return without_apt();
    }
    let is_root = fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
    let tools_dir = root.join("target/tools");
    let system_qemu = cmd::on_path("qemu-system-x86_64");

    let mut wanted: Vec<String> = PACKAGES.iter().map(|(p, _)| p.to_string()).collect();
    let mut missing = not_installed(root, &wanted)?;
    let need_download = system_qemu.is_none() && !tools_dir.join("qemu/.complete").exists()
        || !tools_dir.join("kernel/.complete").exists();
    if is_root && install && (!missing.is_empty() || need_download) {
        apt_update(root)?;
    }
    if system_qemu.is_none() {
        wanted = emulator_libraries(root)?;
        missing.extend(not_installed(root, &wanted)?);
    }
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        let line = install_line(&missing);
        if !install || !is_root {
            let why: Vec<String> = missing
                .iter()
                .map(|m| match PACKAGES.iter().find(|(p, _)| p == m) {
                    Some((p, reason)) => format!("  {p}: {reason}"),
                    None => format!("  {m}: a shared library of the emulator"),
                })
                .collect();
            bail!(
                "the tests need Debian packages that are not installed:\n{}\nrun as root:\n  {line}",
                why.join("\n")
            );
        }
        apt_install(root, &missing).with_context(|| format!("`{line}` failed"))?;
    }

    let qemu = match system_qemu {
        Some(path) => path,
        None => unpack_emulator(root, &tools_dir, is_root, install)?,
    };
    let (kernel, modules) =
        unpack_kernel(root, &tools_dir, is_root, install, KERNEL_METAPACKAGE, "kernel")?;
    let (generic_kernel, generic_modules) = unpack_kernel(
        root,
        &tools_dir,
        is_root,
        install,
        GENERIC_KERNEL_METAPACKAGE,
        "kernel-generic",
    )?;
    let generic_headers = kernel_headers(root, &generic_modules, is_root, install)?;
    let busybox = cmd::on_path("busybox").context("busybox is not on PATH after installation")?;
    let sev_snp_measure = sev_snp_measure(root, &tools_dir, install)?;
    let bitbake_python = bitbake_python(root, &tools_dir, install)?;
    let scarthgap_python = scarthgap_python(root, &tools_dir, install)?;
    let pypi_wheels = pypi_wheels(root, &tools_dir, install)?;
    let crate_mirror = crate_mirror(root, &tools_dir, install)?;
    let kernel_source = kernel_source(root, &tools_dir, install)?;
    let dosfstools_source = dosfstools_source(root, &tools_dir, install)?;
    let docker_check_config = docker_check_config(root, &tools_dir, is_root, install)?;
    let mut env = Vec::new();
    if is_root {
        env.push(("SECRETVM_ROOTLESS_USER", rootless_user(root, install)?));
        tun_device(root, install)?;
        let (tsm_kernel, tsm_modules) = tsm_kernel(root, &tools_dir, install)?;
        env.push(("SECRETVM_TSM_KERNEL", tsm_kernel));
        env.push(("SECRETVM_TSM_MODULES", tsm_modules));
    }
    Ok(Tools {
        env: env
            .into_iter()
            .chain([
                ("SECRETVM_QEMU", qemu),
                ("SECRETVM_KERNEL", kernel),
                ("SECRETVM_KERNEL_MODULES", modules),
                ("SECRETVM_GENERIC_KERNEL", generic_kernel),
                ("SECRETVM_GENERIC_KERNEL_MODULES", generic_modules),
                ("SECRETVM_GENERIC_KERNEL_HEADERS", generic_headers),
                ("SECRETVM_BUSYBOX", busybox),
                ("SECRETVM_SEV_SNP_MEASURE", sev_snp_measure),
                ("SECRETVM_BITBAKE_PYTHON", bitbake_python),
                ("SECRETVM_SCARTHGAP_PYTHON", scarthgap_python),
                ("SECRETVM_PYPI_WHEELS", pypi_wheels),
                ("SECRETVM_CRATE_MIRROR", crate_mirror),
                ("SECRETVM_KERNEL_SOURCE", kernel_source),
                ("SECRETVM_DOSFSTOOLS_SOURCE", dosfstools_source),
                ("SECRETVM_DOCKER_CHECK_CONFIG", docker_check_config),
            ])
            .collect(),
    })
}

/// The kbuild tree of the kernel whose modules are `modules` (`lib/modules/<version>`), for
/// building the layer's out-of-tree tdx-guest module against the kernel the boot test runs:
/// Debian's `linux-headers-<version>`, installed with apt-get (its makefiles name absolute
/// paths, so it cannot be unpacked elsewhere).
fn kernel_headers(root: &Path, modules: &Path, is_root: bool, install: bool) -> Result<PathBuf> {
    let version = modules
        .file_name()
        .with_context(|| format!("no kernel version in {}", modules.display()))?
        .to_string_lossy()
        .into_owned();
    let dir = PathBuf::from(format!("/usr/src/linux-headers-{version}"));
    if dir.join("Makefile").is_file() {
        return Ok(dir);
    }
    let package = [format!("linux-headers-{version}")];
    let line = install_line(&package);
    if !install || !is_root {
        bail!(
            "the tests need {}: the kernel headers the tdx-guest module is built against for the \
             boot test\nrun as root:\n  {line}",
            package[0]
        );
    }
    if apt_install(root, &package).is_err() {
        // The package lists may predate this kernel version, or have been cleaned.
        apt_update(root)?;
        apt_install(root, &package).with_context(|| format!("`{line}` failed"))?;
    }
    if !dir.join("Makefile").is_file() {
        bail!("{} is installed but {} has no Makefile", package[0], dir.display());
    }
    Ok(dir)
}

/// The command a user runs as root to install `packages`, for messages.
fn install_line(packages: &[String]) -> String {
    format!("apt-get update && apt-get install -y --no-install-recommends {}", packages.join(" "))
}

fn apt_update(root: &Path) -> Result<()> {
    cmd::run(cmd::new("apt-get", root).args(["update", "-q"]))
        .context("cannot refresh the Debian package lists")
}

fn apt_install(root: &Path, packages: &[String]) -> Result<()> {
    cmd::run(
        cmd::new("apt-get", root)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages),
    )
}

/// The unprivileged account the rootless-podman test runs podman as when the tests run as
/// root: created (with a home for podman's store and subordinate ids from `useradd`'s defaults)
/// if missing. Its name is what `SECRETVM_ROOTLESS_USER` carries.
fn rootless_user(root: &Path, install: bool) -> Result<PathBuf> {
    const USER: &str = "secretvm-rootless";
    let exists = cmd::new("id", root).arg(USER).output().is_ok_and(|o| o.status.success());
    if !exists {
        if !install {
            bail!("the rootless-podman test needs the user {USER}: run `cargo xtask deps` as root");
        }
        cmd::run(cmd::new("useradd", root).args([
            "--create-home",
            "--shell",
            "/usr/sbin/nologin",
            USER,
        ]))
        .with_context(|| format!("cannot create the user {USER}"))?;
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = fs::read_to_string(file).unwrap_or_default();
        if !text.lines().any(|l| l.starts_with(&format!("{USER}:"))) {
            bail!(
                "{file} gives {USER} no subordinate ids; add a line such as `{USER}:300000:65536`"
            );
        }
    }
    Ok(PathBuf::from(USER))
}

/// `/dev/net/tun`, usable by every user: slirp4netns gives a rootless podman container its
/// network through a tap device, and opens the device as that user. Distributions make it
/// 0666 (udev); a container host may leave it 0600, or leave it out.
fn tun_device(root: &Path, install: bool) -> Result<()> {
    const TUN: &str = "/dev/net/tun";
    let mode = fs::metadata(TUN).map(|m| m.mode() & 0o777);
    match mode {
        Ok(mode) if mode & 0o006 == 0o006 => {}
        Ok(mode) if install => {
            println!("$ chmod 0666 {TUN}   # was {mode:04o}; rootless podman's network opens it");
            fs::set_permissions(TUN, fs::Permissions::from_mode(0o666))
                .with_context(|| format!("cannot make {TUN} usable by other users"))?;
        }
        Ok(mode) => bail!("{TUN} is {mode:04o}; rootless podman's network needs 0666"),
        Err(_) if install => {
            // The tun device is character device 10:200 (the kernel's devices.txt).
            fs::create_dir_all("/dev/net").context("cannot create /dev/net")?;
            cmd::run(cmd::new("mknod", root).args(["-m", "0666", TUN, "c", "10", "200"]))
                .with_context(|| format!("rootless podman's network needs {TUN}"))?;
        }
        Err(err) => bail!("rootless podman's network needs {TUN}: {err}"),
    }
    Ok(())
}

/// A virtualenv under `target/tools/<name>` with the pinned PyPI package `pinned` installed;
/// returns its directory.
fn venv(
    root: &Path,
    tools: &Path,
    install: bool,
    name: &str,
    pip_args: &[&str],
) -> Result<PathBuf> {
    let dir = tools.join(name);
    // The marker holds what was installed, so a changed pin makes a new virtualenv.
    let wanted = pip_args.join(" ");
    let marker = dir.join(".complete");
    if fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        let python = cmd::on_path("python3").context(
            "python3 is not on PATH: install python3-venv (or run `cargo xtask deps` as root)",
        )?;
        if !install {
            bail!("{name}: {wanted} is not installed yet: run `cargo xtask deps`");
        }
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        cmd::run(cmd::new(python, root).args(["-m", "venv"]).arg(&dir))?;
        cmd::run(cmd::new(dir.join("bin/pip"), root).args(["install", "-q"]).args(pip_args))
            .with_context(|| format!("cannot pip install {wanted}"))?;
        fs::write(&marker, &wanted)?;
    }
    Ok(dir)
}

/// The reference SEV-SNP calculator the differential test of `secretvm measure snp` runs:
/// sev-snp-measure from PyPI, pinned, in a virtualenv.
fn sev_snp_measure(root: &Path, tools: &Path, install: bool) -> Result<PathBuf> {
    let dir = venv(root, tools, install, "sev-snp-measure", &["sev-snp-measure==0.0.13"])?;
    Ok(dir.join("bin/sev-snp-measure"))
}

/// The python of a virtualenv with BitBake's `bb` package, which the layer tests use to parse
/// `meta-secret/` and our generated conf: PyPI `bitbake-setup`, pinned (its wheel carries `bb`
/// without the bitbake scripts, hashserv or prserv; the tests stub the last two).
fn bitbake_python(root: &Path, tools: &Path, install: bool) -> Result<PathBuf> {
    let dir = venv(root, tools, install, "bitbake", &["bitbake-setup==2.19.0"])?;
    Ok(dir.join("bin/python"))
}

/// The python on which `python_wheels.py` runs the layer's wheel recipes: a virtualenv with
/// exactly the Python libraries of the pinned layers, at their versions, as
/// `crates/yocto/tests/fixtures/scarthgap-python.txt` lists them (binary wheels only, no
/// dependency resolution, so nothing else comes in).
fn scarthgap_python(root: &Path, tools: &Path, install: bool) -> Result<PathBuf> {
    let list = root.join(SCARTHGAP_PYTHON_LIST);
    let text =
        fs::read_to_string(&list).with_context(|| format!("cannot read {}", list.display()))?;
    let mut args = vec!["--no-deps", "--only-binary=:all:"];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            [recipe, pin] if recipe.starts_with("python3-") && pin.contains("==") => args.push(pin),
            _ => bail!(
                "{}:{}: expected `<recipe> <distribution>==<version>`, found {line:?}",
                list.display(),
                n + 1
            ),
        }
    }
    let dir = venv(root, tools, install, "scarthgap-python", &args)?;
    Ok(dir.join("bin/python"))
}

/// The wheels meta-secret's wheel recipes name (`SECRET_VM_WHEEL_URL` in
/// `meta-secret/recipes-*/*/*.bb`), downloaded once from those URLs into
/// `target/tools/pypi-wheels/`: the premirror from which `python_wheels.py` has BitBake's
/// fetcher take them (checking each recipe's sha256), so the test itself needs no network.
fn pypi_wheels(root: &Path, tools: &Path, install: bool) -> Result<PathBuf> {
    let dir = tools.join("pypi-wheels");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for url in wheel_urls(&root.join("meta-secret"))? {
        let name = url.rsplit('/').next().unwrap_or_default();
        download_once(root, &dir.join(name), &url, install)?;
    }
    Ok(dir)
}

/// Downloads `url` to `path` unless it is there (through `<path>.part`, so an interrupted
/// download is never taken for a complete one).
fn download_once(root: &Path, path: &Path, url: &str, install: bool) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    if !install {
        bail!("{} is not downloaded yet: run `cargo xtask deps`", path.display());
    }
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    cmd::run(cmd::new("curl", root).args(["-fsSL", "--retry", "3", "-o"]).arg(&part).arg(url))
        .with_context(|| format!("cannot download {url}"))?;
    fs::rename(&part, path).with_context(|| format!("cannot rename to {}", path.display()))
}

/// The crates of the Rust vendoring tests' Cargo.lock files ([`CRATE_LOCKS`], every crates.io
/// package of each), downloaded once from static.crates.io into `target/tools/crates-mirror/`
/// as `<name>-<version>.crate`: the premirror from which `cargo_vendor.py` has BitBake's crate
/// fetcher take them (checking each sha256 of the crates include).
fn crate_mirror(root: &Path, tools: &Path, install: bool) -> Result<PathBuf> {
    let dir = tools.join("crates-mirror");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for lock in CRATE_LOCKS {
        let lock = root.join(lock);
        let text =
            fs::read_to_string(&lock).with_context(|| format!("cannot read {}", lock.display()))?;
        for (name, version) in registry_packages(&text) {
            let file = format!("{name}-{version}.crate");
            let url = format!("https://static.crates.io/crates/{name}/{file}");
            download_once(root, &dir.join(&file), &url, install)?;
        }
    }
    Ok(dir)
}

/// The Cargo.lock files whose crates the vendoring tests fetch: the test's own project, and
/// the layer's `secretvm-guest`, which the test builds from its recipe.
const CRATE_LOCKS: [&str; 2] = [
    "crates/yocto/tests/fixtures/cargo-vendor/Cargo.lock",
    "meta-secret/recipes-core/secretvm-guest/files/secretvm-guest/Cargo.lock",
];

/// `(name, version)` of every `[[package]]` of a Cargo.lock whose source is the crates.io
/// registry.
fn registry_packages(lock: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                l.trim()
                    .strip_prefix(key)?
                    .trim_start()
                    .strip_prefix('=')?
                    .trim()
                    .strip_prefix('"')?
                    .strip_suffix('"')
                    .map(str::to_owned)
            })
        };
        let from_registry = field("source").is_some_and(|s| s.starts_with("registry+"));
        if let (true, Some(name), Some(version)) = (from_registry, field("name"), field("version"))
        {
            out.push((name, version));
        }
    }
    out
}

/// Every `SECRET_VM_WHEEL_URL = "..."` of the layer's recipes.
fn wheel_urls(layer: &Path) -> Result<Vec<String>> {
    let mut urls = Vec::new();
    for group in fs::read_dir(layer).with_context(|| format!("cannot read {}", layer.display()))? {
        let group = group?.path();
        let is_recipes =
            group.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("recipes-"));
        if !is_recipes || !group.is_dir() {
            continue;
        }
        for recipe_dir in fs::read_dir(&group)? {
            let recipe_dir = recipe_dir?.path();
            if !recipe_dir.is_dir() {
                continue;
            }
            for file in fs::read_dir(&recipe_dir)? {
                let file = file?.path();
                if file.extension().is_none_or(|e| e != "bb") {
                    continue;
                }
                let text = fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                for line in text.lines() {
                    if let Some(value) = line.trim().strip_prefix("SECRET_VM_WHEEL_URL = \"") {
                        urls.push(value.trim_end_matches('"').to_owned());
                    }
                }
            }
        }
    }
    urls.sort();
    Ok(urls)
}

/// The kernel source tree the config-fragment test configures: the tarball of Debian's
/// `linux-source-6.12` (installed above) unpacked under `target/tools/`, once.
fn kernel_source(root: &Path, tools: &Path, install: bool) -> Result<PathBuf> {
    let tarball = PathBuf::from(format!("/usr/src/{KERNEL_SOURCE_PACKAGE}.tar.xz"));
    let dir = tools.join(KERNEL_SOURCE_PACKAGE);
    if dir.join(".complete").exists() {
        return Ok(dir);
    }
    if !install {
        bail!("{} is not unpacked yet: run `cargo xtask deps`", dir.display());
    }
    if !tarball.is_file() {
        bail!("{} is missing: install {KERNEL_SOURCE_PACKAGE}", tarball.display());
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    // The tarball's top directory is the package name.
    cmd::run(cmd::new("tar", root).arg("-xJf").arg(&tarball).arg("-C").arg(tools))?;
    if !dir.join("scripts/kconfig/merge_config.sh").is_file() {
        bail!("{} did not unpack into {}", tarball.display(), dir.display());
    }
    fs::write(dir.join(".complete"), "")?;
    Ok(dir)
}

/// The source tarball of dosfstools 4.2 as Debian's archive serves it (`dosfstools_4.2.orig.tar.gz`,
/// the upstream release; the test checks it is the one poky's recipe names), downloaded once into
/// `target/tools/`: `tests/dosfstools.rs` builds mkfs.fat from it with the layer's patch.
fn dosfstools_source(root: &Path, tools: &Path, install: bool) -> Result<PathBuf> {
    let path = tools.join("dosfstools_4.2.orig.tar.gz");
    let url = "http://deb.debian.org/debian/pool/main/d/dosfstools/dosfstools_4.2.orig.tar.gz";
    download_once(root, &path, url, install)?;
    Ok(path)
}

/// Docker's own kernel-config check, `contrib/check-config.sh` of Debian's docker.io package:
/// the installed one, else unpacked (not installed: the machine's engine may come from another
/// package) under `target/tools/docker-io`.
fn docker_check_config(root: &Path, tools: &Path, is_root: bool, install: bool) -> Result<PathBuf> {
    const SCRIPT: &str = "usr/share/docker.io/contrib/check-config.sh";
    let installed = Path::new("/").join(SCRIPT);
    if installed.is_file() {
        return Ok(installed);
    }
    let dir = tools.join("docker-io");
    if !dir.join(".complete").exists() {
        if !install {
            bail!("Docker's check-config.sh is not unpacked yet: run `cargo xtask deps`");
        }
        download_and_unpack(root, &dir, &["docker.io"], is_root)?;
        fs::write(dir.join(".complete"), "docker.io")?;
    }
    let script = dir.join(SCRIPT);
    if !script.is_file() {
        bail!("the docker.io package has no {SCRIPT}");
    }
    Ok(script)
}

/// Off Debian we cannot install anything: check that the tools are there and say what is not.
fn without_apt() -> Result<Tools> {
    let mut missing = Vec::new();
    for tool in ["cpio", "bsdtar", "busybox", "qemu-img", "qemu-system-x86_64", "shellcheck"] {
        if cmd::on_path(tool).is_none() {
            missing.push(tool);
        }
    }
    let kernel = std::env::var_os("SECRETVM_KERNEL").map(PathBuf::from);
    let modules = std::env::var_os("SECRETVM_KERNEL_MODULES").map(PathBuf::from);
    let (Some(kernel), Some(modules), true) = (kernel, modules, missing.is_empty()) else {
        bail!(
            "this is not a Debian system, so `cargo xtask test` cannot install its tools.\n\
             Missing on PATH: {}.\nAlso set SECRETVM_KERNEL to an x86-64 Linux bzImage and \
             SECRETVM_KERNEL_MODULES to its /lib/modules/<version> directory (virtio_blk, isofs \
             and overlay as modules or built in).",
            if missing.is_empty() { "nothing".to_string() } else { missing.join(", ") }
        );
    };
    let found = |t: &str| cmd::on_path(t).unwrap_or_default();
    Ok(Tools {
        env: vec![
            ("SECRETVM_QEMU", found("qemu-system-x86_64")),
            ("SECRETVM_KERNEL", kernel),
            ("SECRETVM_KERNEL_MODULES", modules),
            ("SECRETVM_BUSYBOX", found("busybox")),
        ],
    })
}

/// The subset of `packages` that dpkg does not report as installed.
fn not_installed(root: &Path, packages: &[String]) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for package in packages {
        let status = cmd::new("dpkg-query", root)
            .args(["-W", "-f=${db:Status-Status}", package])
            .output()
            .with_context(|| format!("cannot run dpkg-query for {package}"))?;
        if String::from_utf8_lossy(&status.stdout).trim() != "installed" {
            missing.push(package.clone());
        }
    }
    Ok(missing)
}

/// The shared-library packages the emulator binary needs: its `Depends` minus the packages we
/// unpack ourselves.
fn emulator_libraries(root: &Path) -> Result<Vec<String>> {
    let out = cmd::output(cmd::new("apt-cache", root).args(["depends", EMULATOR_PACKAGES[0]]))
        .context(
            "cannot read the dependencies of qemu-system-x86 (run `apt-get update` as root)",
        )?;
    let mut libs = Vec::new();
    for line in out.lines() {
        let line = line.trim_start_matches([' ', '|']);
        let Some(name) = line.strip_prefix("Depends: ") else { continue };
        let name = name.trim();
        if name.starts_with('<')
            || EMULATOR_PACKAGES.contains(&name)
            || libs.iter().any(|l| l == name)
        {
            continue;
        }
        libs.push(name.to_string());
    }
    if libs.is_empty() {
        bail!("apt-cache lists no dependencies for qemu-system-x86 (run `apt-get update` as root)");
    }
    Ok(libs)
}

/// What runs inside the Debian trixie root that [`tsm_kernel`] makes: the newest kernel of
/// trixie-backports (Linux 6.16 and later have the measurement-register sysfs, tsm-mr), and
/// the kernel's own sample module for that sysfs (`samples/tsm-mr`, which Debian does not
/// build), compiled against that kernel's headers. Leaves `vmlinuz`, `tsm_mr_sample.ko` and
/// `version` in `/build/out`.
const TSM_KERNEL_SCRIPT: &str = r#"set -eu
export DEBIAN_FRONTEND=noninteractive
echo "deb http://deb.debian.org/debian trixie-backports main" > /etc/apt/sources.list.d/backports.list
apt-get update -q
apt-get install -y -q --no-install-recommends -t trixie-backports linux-headers-amd64 linux-source
headers=$(ls -d /usr/src/linux-headers-*-amd64)
version=${headers#/usr/src/linux-headers-}
mkdir -p /build/image /build/sample /build/out
cd /build
# Since Linux 7.x Debian ships the image itself in linux-binary-<version>, under
# /usr/lib/modules; before, linux-image-<version> had it in /boot.
package=linux-image-$version
if apt-cache show "linux-binary-$version" > /dev/null 2>&1; then package=linux-binary-$version; fi
apt-get download -q -t trixie-backports "$package"
dpkg-deb -x "$package"_*.deb /build/image
for kernel in "/build/image/boot/vmlinuz-$version" "/build/image/usr/lib/modules/$version/vmlinuz"; do
    if [ -f "$kernel" ]; then cp "$kernel" /build/out/vmlinuz; fi
done
[ -f /build/out/vmlinuz ] || { echo "no vmlinuz in $package" >&2; exit 1; }
tar -xJf /usr/src/linux-source-*.tar.xz -C /build/sample --strip-components=3 --wildcards '*/samples/tsm-mr/tsm_mr_sample.c'
echo 'obj-m += tsm_mr_sample.o' > /build/sample/Makefile
make -s -C "$headers" M=/build/sample modules
cp /build/sample/tsm_mr_sample.ko /build/out/
echo "$version" > /build/out/version
"#;

/// A Linux kernel with the measurement registers in sysfs (6.16 and later) and a module that
/// gives it registers without TDX hardware, for the test of `secretvm-guest` against the
/// kernel's own code: `target/tools/tsm-kernel/{vmlinuz,modules/tsm_mr_sample.ko}`. Made in a
/// debootstrapped Debian trixie root (the kernel's build tools need trixie's C library), which
/// is removed afterwards. Needs root (debootstrap, chroot).
fn tsm_kernel(root: &Path, tools: &Path, install: bool) -> Result<(PathBuf, PathBuf)> {
    let dir = tools.join("tsm-kernel");
    let (kernel, modules) = (dir.join("vmlinuz"), dir.join("modules"));
    if dir.join(".complete").exists() {
        return Ok((kernel, modules));
    }
    if !install {
        bail!("no tsm-mr test kernel built yet: run `cargo xtask deps` as root");
    }
    let chroot = tools.join("trixie-root");
    for old in [&chroot, &dir] {
        if old.exists() {
            fs::remove_dir_all(old).with_context(|| format!("cannot clear {}", old.display()))?;
        }
    }
    cmd::run(
        cmd::new("debootstrap", root)
            .args(["--variant=minbase", "--include=gcc-14,make,libc6-dev,xz-utils", "trixie"])
            .arg(&chroot)
            .arg("http://deb.debian.org/debian"),
    )
    .context("cannot debootstrap Debian trixie for the tsm-mr test kernel")?;
    let proc = chroot.join("proc");
    // objtool, run by kbuild, reads /proc.
    cmd::run(cmd::new("mount", root).args(["-t", "proc", "proc"]).arg(&proc))?;
    let built =
        cmd::run(cmd::new("chroot", root).arg(&chroot).args(["sh", "-c", TSM_KERNEL_SCRIPT]));
    let unmounted = cmd::run(cmd::new("umount", root).arg(&proc));
    built.context("cannot build the tsm-mr sample module for trixie-backports' kernel")?;
    unmounted?;
    fs::create_dir_all(&modules)?;
    let out = chroot.join("build/out");
    fs::copy(out.join("vmlinuz"), &kernel)?;
    fs::copy(out.join("tsm_mr_sample.ko"), modules.join("tsm_mr_sample.ko"))?;
    let version = fs::read_to_string(out.join("version"))?;
    fs::remove_dir_all(&chroot).with_context(|| format!("cannot remove {}", chroot.display()))?;
    fs::write(dir.join(".complete"), version)?;
    Ok((kernel, modules))
}

/// Downloads `packages` with apt into `dir/debs` and unpacks them into `dir`.
fn download_and_unpack(root: &Path, dir: &Path, packages: &[&str], is_root: bool) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let debs = dir.join("debs");
    fs::create_dir_all(&debs).with_context(|| format!("cannot create {}", debs.display()))?;
    let mut download = cmd::new("apt-get", &debs);
    if is_root {
        // apt drops privileges to `_apt`, which cannot write into our target directory.
        download.args(["-o", "APT::Sandbox::User=root"]);
    }
    cmd::run(download.args(["download", "-q"]).args(packages))
        .with_context(|| format!("cannot download {}", packages.join(" ")))?;
    for entry in fs::read_dir(&debs)? {
        let deb = entry?.path();
        cmd::run(cmd::new("dpkg-deb", root).arg("-x").arg(&deb).arg(dir))
            .with_context(|| format!("cannot unpack {}", deb.display()))?;
    }
    fs::remove_dir_all(&debs)?;
    Ok(())
}

/// Provides an emulator under `target/tools/qemu` and a wrapper script that points it at its
/// unpacked modules and firmware.
fn unpack_emulator(root: &Path, tools: &Path, is_root: bool, install: bool) -> Result<PathBuf> {
    let dir = tools.join("qemu");
    let wrapper = dir.join("qemu-system-x86_64");
    if !dir.join(".complete").exists() {
        if !install {
            bail!("no qemu-system-x86_64 on PATH and none unpacked yet: run `cargo xtask deps`");
        }
        download_and_unpack(root, &dir, EMULATOR_PACKAGES, is_root)?;
        let script = format!(
            "#!/bin/sh\n\
             # Written by `cargo xtask deps`: runs the unpacked (not installed) Debian emulator.\n\
             d='{dir}'\n\
             export QEMU_MODULE_DIR=\"$d/usr/lib/x86_64-linux-gnu/qemu\"\n\
             exec \"$d/usr/bin/qemu-system-x86_64\" -L \"$d/usr/share/qemu\" \
             -L \"$d/usr/share/seabios\" -L \"$d/usr/lib/ipxe/qemu\" \"$@\"\n",
            dir = dir.display()
        );
        fs::write(&wrapper, script)?;
        fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        cmd::output(cmd::new(&wrapper, root).arg("--version"))
            .context("the unpacked emulator does not start")?;
        fs::write(dir.join(".complete"), "")?;
    }
    Ok(wrapper)
}

/// Provides the Debian kernel `metapackage` depends on, with its modules, under
/// `target/tools/<dir>`.
fn unpack_kernel(
    root: &Path,
    tools: &Path,
    is_root: bool,
    install: bool,
    metapackage: &str,
    dir: &str,
) -> Result<(PathBuf, PathBuf)> {
    let dir = tools.join(dir);
    if !dir.join(".complete").exists() {
        if !install {
            bail!("no kernel unpacked yet: run `cargo xtask deps`");
        }
        let out = cmd::output(cmd::new("apt-cache", root).args(["depends", metapackage]))?;
        let package = out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-"))
            .with_context(|| format!("apt-cache names no kernel image for {metapackage}"))?
            .to_string();
        download_and_unpack(root, &dir, &[&package], is_root)?;
        fs::write(dir.join(".complete"), &package)?;
    }
    let vmlinuz = fs::read_dir(dir.join("boot"))
        .with_context(|| format!("no boot/ in {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
        .with_context(|| format!("no vmlinuz-* in {}/boot", dir.display()))?;
    let version =
        vmlinuz.file_name().unwrap_or_default().to_string_lossy()["vmlinuz-".len()..].to_string();
    let modules = dir.join("lib/modules").join(&version);
    if !modules.is_dir() {
        bail!("the kernel package has no modules directory {}", modules.display());
    }
    Ok((vmlinuz, modules))
}
