//! The kernel config fragments of `meta-secret/recipes-kernel/linux/files/` against the
//! kernel's own Kconfig: every option a fragment sets must come out of `make olddefconfig` with
//! the value the fragment gives. Kconfig drops an option silently when what it depends on is
//! off (`INTEL_TDX_GUEST` without `X86_X2APIC`, `BRIDGE_NETFILTER` without
//! `NETFILTER_ADVANCED`), so a fragment can look right and build a kernel without it.
//!
//! Each kernel is configured as its recipe does it: the SEV and GCP recipes merge their
//! fragments (the `${WORKDIR}/*.cfg` of their `merge_config.sh` line, in that order) onto
//! `arch/x86/configs/x86_64_defconfig`; the TDX kernel's fragments are the `kconf` lines of
//! `secret-vm.scc`, checked on the same defconfig because linux-yocto-dev's own base comes
//! from the Yocto kernel cache, which is not reachable here (its base enables more, so this is
//! the stricter check). The Kconfig is Debian's `linux-source-6.12` (`SECRETVM_KERNEL_SOURCE`,
//! unpacked by `cargo xtask deps`); the kernels we build are 6.16, whose Kconfig for these
//! options may differ in places, which is why the test names the source version it used.
//!
//! Then Docker's own `contrib/check-config.sh` (from Debian's docker.io package) reads each
//! resulting `.config`: nothing it calls generally necessary may be missing; and what the init
//! scripts and recipes use (`GUEST_NEEDS`: the cdrom and ISO of the OS image, 9p, overlay,
//! dm-crypt, the TEE guest drivers, NVMe and gVNIC on Google Cloud) must be built in.

#![allow(clippy::disallowed_methods, clippy::print_stderr)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use secretvm_testkit::{tool_from_env, workspace};

fn kernel_dir() -> PathBuf {
    workspace().join("meta-secret/recipes-kernel/linux")
}

/// The fragments a recipe's `merge_config.sh` line names, in order.
fn recipe_fragments(recipe: &str) -> Vec<String> {
    let text = fs::read_to_string(kernel_dir().join(recipe)).unwrap();
    let start =
        text.find("merge_config.sh").unwrap_or_else(|| panic!("{recipe}: no merge_config.sh"));
    // The task body ends with a `}` alone on its line (`${B}` has one too).
    let end = start + text[start..].find("\n}").unwrap_or(text.len() - start);
    let command = text[start..end].replace("\\\n", " ");
    assert!(command.contains("${S}/arch/x86/configs/x86_64_defconfig"), "{recipe}: {command}");
    command
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("${WORKDIR}/"))
        .map(str::to_owned)
        .collect()
}

/// The fragments `secret-vm.scc` adds with `kconf`.
fn scc_fragments() -> Vec<String> {
    let text = fs::read_to_string(kernel_dir().join("files/secret-vm.scc")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("kconf "))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(str::to_owned)
        .collect()
}

/// `CONFIG_X` to its value in a `.config` (`n` for "is not set").
fn read_config(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=').filter(|(k, _)| k.starts_with("CONFIG_")) {
            out.insert(k.to_owned(), v.to_owned());
        } else if let Some(k) = line.strip_prefix("# ").and_then(|l| l.strip_suffix(" is not set"))
        {
            out.insert(k.to_owned(), "n".to_owned());
        }
    }
    out
}

/// Configures `source` with `fragments` (names in `files/`, or paths) on x86_64_defconfig in a
/// fresh output directory, as the recipes do; returns the directory, holding `.config`.
fn configure(source: &Path, fragments: &[String]) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let merge = Command::new("sh")
        .arg("scripts/kconfig/merge_config.sh")
        .arg("-m")
        .arg("-O")
        .arg(out.path())
        .arg("arch/x86/configs/x86_64_defconfig")
        .args(fragments.iter().map(|f| fragment_path(f)))
        .current_dir(source)
        .output()
        .unwrap();
    assert!(merge.status.success(), "merge_config.sh: {}", String::from_utf8_lossy(&merge.stderr));
    let make = Command::new("make")
        .args(["-s", "ARCH=x86_64"])
        .arg(format!("O={}", out.path().display()))
        .arg("olddefconfig")
        .current_dir(source)
        .output()
        .unwrap();
    assert!(make.status.success(), "olddefconfig: {}", String::from_utf8_lossy(&make.stderr));
    out
}

fn fragment_path(fragment: &str) -> PathBuf {
    kernel_dir().join("files").join(fragment)
}

/// Every fragment line whose value did not survive into `config` (a `.config`), as
/// `file:line: CONFIG_X=v, got w`.
fn lost_options(config: &Path, fragments: &[String]) -> Vec<String> {
    let config = read_config(&fs::read_to_string(config).unwrap());
    let mut lost = Vec::new();
    for fragment in fragments {
        for (i, line) in fs::read_to_string(fragment_path(fragment)).unwrap().lines().enumerate() {
            let Some((key, want)) =
                line.trim().split_once('=').filter(|(k, _)| k.starts_with("CONFIG_"))
            else {
                continue;
            };
            let got = config.get(key).map_or("(absent)", String::as_str);
            let same = got == want || (want == "n" && got == "(absent)");
            if !same {
                lost.push(format!("{fragment}:{}: {key}={want}, got {got}", i + 1));
            }
        }
    }
    lost
}

/// The kernels of the layer and their fragments, as their recipes configure them.
fn kernels() -> [(&'static str, Vec<String>); 3] {
    [
        ("sev (linux-amdese)", recipe_fragments("linux-amdese_git.bb")),
        ("gcp-tdx (linux-upstream)", recipe_fragments("linux-upstream_6.16.12.bb")),
        ("tdx (linux-yocto-dev, on x86_64_defconfig)", scc_fragments()),
    ]
}

fn source() -> Option<PathBuf> {
    let source = tool_from_env("SECRETVM_KERNEL_SOURCE")?;
    for tool in ["make", "cc", "flex", "bison"] {
        secretvm_testkit::tool_on_path(tool)?;
    }
    Some(source)
}

#[test]
fn every_fragment_option_survives_the_kernels_kconfig() {
    let Some(source) = source() else { return };
    let mut report = Vec::new();
    for (kernel, fragments) in kernels() {
        assert!(fragments.len() >= 2, "{kernel}: {fragments:?}");
        let out = configure(&source, &fragments);
        for lost in lost_options(&out.path().join(".config"), &fragments) {
            report.push(format!("{kernel}: {lost}"));
        }
    }
    assert!(report.is_empty(), "options that {} drops:\n{}", source.display(), report.join("\n"));
}

/// The check bites: a fragment that asks for TDX guest support without X2APIC loses it.
#[test]
fn an_option_whose_dependency_is_off_is_reported() {
    let Some(source) = source() else { return };
    let dir = tempfile::tempdir().unwrap();
    let fragment = dir.path().join("tdx-without-x2apic.cfg");
    fs::write(&fragment, "CONFIG_INTEL_TDX_GUEST=y\nCONFIG_X86_X2APIC=n\n").unwrap();
    let fragments = [fragment.display().to_string()];
    let out = configure(&source, &fragments);
    let lost = lost_options(&out.path().join(".config"), &fragments);
    assert_eq!(lost.len(), 1, "{lost:?}");
    // Invisible without its dependencies, the symbol is not even written as "is not set".
    assert!(lost[0].ends_with(":1: CONFIG_INTEL_TDX_GUEST=y, got (absent)"), "{lost:?}");
}

/// The options Docker's own `check-config.sh` (from Debian's docker.io package,
/// `SECRETVM_DOCKER_CHECK_CONFIG`) lists as missing in its "Generally Necessary" section.
fn docker_missing(script: &Path, config: &Path) -> (Vec<String>, String) {
    let out = Command::new("bash").arg(script).arg(config).env("NO_COLOR", "1").output().unwrap();
    // Older versions of the script colour their output even when it is not a terminal.
    let text = strip_ansi(&String::from_utf8_lossy(&out.stdout));
    let necessary = text
        .split("Generally Necessary:")
        .nth(1)
        .and_then(|rest| rest.split("Optional Features:").next())
        .unwrap_or_else(|| panic!("no 'Generally Necessary' section:\n{text}"));
    let missing = necessary
        .lines()
        .filter(|l| l.ends_with(": missing"))
        .map(|l| l.trim_start_matches("- ").trim_end_matches(": missing").to_owned())
        .collect();
    (missing, text)
}

/// `text` without ANSI SGR sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What the guests do that needs their kernel, built in (the initramfs carries no modules
/// but tdx-guest): the option, the kernels (`sev`, `gcp`, `tdx`, as [`kernels`] names them
/// first) and why. Read from the init scripts and the recipes, not from the fragments, so a
/// line dropped from a fragment is caught here.
const GUEST_NEEDS: &[(&str, &[&str], &str)] = &[
    ("CONFIG_EFI_STUB", &["sev", "gcp", "tdx"], "OVMF and GRUB start the kernel through EFI"),
    ("CONFIG_DEVTMPFS", &["sev", "gcp", "tdx"], "the init mounts devtmpfs on /dev"),
    ("CONFIG_TMPFS", &["sev", "gcp", "tdx"], "the config copy and the overlay's upper layer"),
    ("CONFIG_OVERLAY_FS", &["sev", "gcp", "tdx"], "the root is an overlay"),
    ("CONFIG_ISO9660_FS", &["sev", "tdx"], "the OS image is an ISO"),
    ("CONFIG_BLK_DEV_SR", &["sev", "tdx"], "the OS image is the cdrom /dev/sr0"),
    ("CONFIG_9P_FS", &["sev", "tdx"], "the config share is QEMU -virtfs"),
    ("CONFIG_NET_9P_VIRTIO", &["sev", "tdx"], "the config share's transport"),
    ("CONFIG_VIRTIO_BLK", &["sev", "tdx"], "encryptedfs.qcow2 is a virtio disk"),
    ("CONFIG_EXT4_FS", &["gcp"], "the root partition is ext4"),
    ("CONFIG_CONFIGFS_FS", &["gcp"], "init-gcp-tdx mounts configfs for TSM reports"),
    ("CONFIG_BLK_DEV_NVME", &["gcp"], "Google Cloud attaches Confidential VM disks by NVMe"),
    ("CONFIG_GVE", &["gcp"], "Google Cloud's gVNIC network"),
    ("CONFIG_INTEL_TDX_GUEST", &["gcp", "tdx"], "a TDX guest"),
    ("CONFIG_TDX_GUEST_DRIVER", &["gcp"], "attest-tool-tsm's quotes through configfs-tsm"),
    ("CONFIG_TSM_REPORTS", &["sev", "gcp"], "configfs-tsm attestation reports"),
    ("CONFIG_AMD_MEM_ENCRYPT", &["sev"], "an SEV-SNP guest"),
    ("CONFIG_SEV_GUEST", &["sev"], "/dev/sev-guest for snpguest"),
    ("CONFIG_DM_CRYPT", &["sev", "gcp", "tdx"], "encryptedfs.qcow2 is LUKS2"),
    ("CONFIG_BLK_DEV_DM", &["sev", "gcp", "tdx"], "secretvm-guest maps the OS image"),
    ("CONFIG_DM_VERITY", &["sev", "gcp", "tdx"], "the init reads the OS image through dm-verity"),
    (
        "CONFIG_BLK_DEV_LOOP",
        &["sev", "gcp", "tdx"],
        "secretvm-guest puts the hash tree on a loop device",
    ),
    (
        "CONFIG_MEMFD_CREATE",
        &["sev", "gcp", "tdx"],
        "secretvm-guest keeps the hash tree in a sealed memfd",
    ),
    ("CONFIG_CRYPTO_SHA256", &["sev", "gcp", "tdx"], "the hash of the init's dm-verity tree"),
    ("CONFIG_CRYPTO_XTS", &["sev", "gcp", "tdx"], "cryptsetup's default LUKS2 cipher"),
    ("CONFIG_BRIDGE", &["sev", "gcp", "tdx"], "Docker's default network"),
    ("CONFIG_BRIDGE_NETFILTER", &["sev", "gcp", "tdx"], "Docker's default network"),
];

/// Every guest runs Docker: its kernel must have what Docker's own check calls generally
/// necessary, and what [`GUEST_NEEDS`] lists, built in. The script also reads the host's
/// cgroup layout: on a cgroup v1 host it checks the v1 controllers (MEMCG among them) as
/// well, on a v2 host it does not.
#[test]
fn every_kernel_has_what_its_guest_runs() {
    let Some(source) = source() else { return };
    let Some(script) = tool_from_env("SECRETVM_DOCKER_CHECK_CONFIG") else { return };
    let mut report = Vec::new();
    for (kernel, fragments) in kernels() {
        let out = configure(&source, &fragments);
        let config_path = out.path().join(".config");
        let (missing, _) = docker_missing(&script, &config_path);
        if !missing.is_empty() {
            report.push(format!("{kernel}: Docker's check-config.sh: {}", missing.join(", ")));
        }
        let config = read_config(&fs::read_to_string(&config_path).unwrap());
        let short = kernel.split_whitespace().next().unwrap_or_default().trim_end_matches("-tdx");
        for (option, kernels, why) in GUEST_NEEDS {
            if kernels.contains(&short) && config.get(*option).map(String::as_str) != Some("y") {
                report.push(format!("{kernel}: {option} not built in ({why})"));
            }
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));

    // It bites: the kernel's defconfig alone lacks veth and bridge netfilter.
    let out = configure(&source, &[]);
    let (missing, text) = docker_missing(&script, &out.path().join(".config"));
    for option in ["CONFIG_VETH", "CONFIG_BRIDGE_NETFILTER"] {
        assert!(missing.iter().any(|m| m == option), "{option} not reported:\n{text}");
    }
}
