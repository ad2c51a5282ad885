//! `secretvm build --from-deploy` on a fake bitbake build directory: stable links (relative, as
//! bitbake makes them) to timestamped files, next to decoys of an older build.
//!
//! Expected values come from the test's own inputs, the real `sha256sum`, and `secretvm pack
//! iso` with upstream's flags (whose output the ISO tests compare with xorriso's image); the
//! launch files are the shared measurement vectors.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{run_err, run_ok, secretvm, tool_on_path, vectors};

const CURRENT: &str = "20261125093000";

/// Where a stable deploy name points: `a.rootfs.cpio` -> `a.rootfs-<stamp>.cpio`.
fn stamped(deploy: &str, stamp: &str) -> String {
    for ext in [".cpio.gz", ".cpio", ".wic", ".fd", ".spdx.json"] {
        if let Some(stem) = deploy.strip_suffix(ext) {
            return format!("{stem}-{stamp}{ext}");
        }
    }
    format!("{deploy}-{stamp}.bin")
}

/// Puts `bytes` behind the link `deploy` in `dir`, with a decoy of an older build beside it.
fn deploy(dir: &Path, deploy: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(stamped(deploy, "20261124080000")), b"an older build").unwrap();
    fs::write(dir.join(stamped(deploy, CURRENT)), bytes).unwrap();
    symlink(stamped(deploy, CURRENT), dir.join(deploy)).unwrap();
}

/// A fake build directory for the three machines of `yocto/secretvm.toml`; `None` when the
/// vectors are missing.
pub(crate) fn fake_build(root: &Path) -> Option<PathBuf> {
    let vectors = vectors()?;
    let measure = vectors.join("measure/inputs");
    let build = root.join("build");
    let tree = root.join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    for (machine, ovmf, kernel) in [
        ("tdx", "firmware/OVMF.trixie.fd", "kernel/vmlinuz-6.12.117+deb13-cloud-amd64"),
        ("sev", "firmware/OVMF.amdsev.fd", "kernel/memtest86+x64.efi"),
    ] {
        let dir = build.join(format!("tmp-{machine}-glibc/deploy/images/secret-vm-{machine}"));
        deploy(&dir, "ovmf.fd", &fs::read(measure.join(ovmf)).unwrap());
        deploy(&dir, "bzImage", &fs::read(measure.join(kernel)).unwrap());
        deploy(
            &dir,
            &format!("secret-vm-initramfs-secret-vm-{machine}.rootfs.cpio.gz"),
            &fs::read(measure.join("initrd/initramfs.cpio.gz")).unwrap(),
        );
        for variant in ["dev", "prod", "gpu-dev", "gpu-prod"] {
            fs::write(tree.join("etc/variant"), format!("{machine} {variant}\n")).unwrap();
            let cpio = root.join("rootfs.cpio");
            crate::support::pack_cpio(&tree, &cpio);
            let name = format!("secret-vm-rootfs-{variant}-secret-vm-{machine}.rootfs.cpio");
            deploy(&dir, &name, &fs::read(&cpio).unwrap());
        }
        deploy_sboms(
            &dir,
            machine,
            &["initramfs", "rootfs-dev", "rootfs-prod", "rootfs-gpu-dev", "rootfs-gpu-prod"],
        );
    }
    let dir = build.join("tmp-gcp-tdx-glibc/deploy/images/secret-vm-gcp-tdx");
    for variant in ["dev", "prod"] {
        let mut disk = vec![0u8; 1 << 20];
        disk[..variant.len()].copy_from_slice(variant.as_bytes());
        let name = format!("secret-vm-rootfs-{variant}-secret-vm-gcp-tdx.rootfs.wic");
        deploy(&dir, &name, &disk);
    }
    deploy_sboms(&dir, "gcp-tdx", &["initramfs", "rootfs-dev", "rootfs-prod"]);
    Some(build)
}

/// Puts the SBOM of each of `images` where poky's create-spdx-3.0 deploys it:
/// `<IMAGE_LINK_NAME>.spdx.json`, a link to the document named by the timestamped IMAGE_NAME.
/// Each lists the image file deployed under the same link name with its SHA-256, as poky's
/// does (`secretvm_testkit::image_sbom`); gcp-tdx's initramfs, not deployed here, gets one
/// that lists a file of its own name.
fn deploy_sboms(dir: &Path, machine: &str, images: &[&str]) {
    for image in images {
        let link = format!("secret-vm-{image}-secret-vm-{machine}.rootfs");
        deploy(dir, &format!("{link}.spdx.json"), &sbom_of(dir, &link));
    }
}

/// The SBOM poky would deploy for the image whose IMAGE_LINK_NAME is `link`, from the image
/// file deployed in `dir` now.
pub(crate) fn sbom_of(dir: &Path, link: &str) -> Vec<u8> {
    let deployed = [".cpio.gz", ".cpio", ".wic"]
        .map(|ext| format!("{link}{ext}"))
        .into_iter()
        .find(|name| dir.join(name).exists());
    match deployed {
        Some(name) => {
            let bytes = fs::read(dir.join(&name)).unwrap();
            let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
            secretvm_testkit::image_sbom(&stamped(&name, CURRENT), &sha256)
        }
        None => secretvm_testkit::image_sbom(link, &"e".repeat(64)),
    }
}

pub(crate) fn build_cmd(build: &Path, out: &Path) -> Command {
    let mut cmd = secretvm();
    cmd.arg("build")
        .arg("--from-deploy")
        .arg(build)
        .arg("--config")
        .arg(secretvm_testkit::workspace().join("yocto/secretvm.toml"))
        .arg("--out")
        .arg(out)
        .args(["--git-revision", "0123456789abcdef0123456789abcdef01234567"])
        .current_dir(build.parent().unwrap());
    cmd
}

/// Every file below `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                pending.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

#[test]
fn two_runs_give_byte_identical_outputs_that_sha256sum_checks() {
    let root = tempfile::tempdir().unwrap();
    let Some(build) = fake_build(root.path()) else { return };
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let stdout = String::from_utf8(run_ok(&mut build_cmd(&build, &a)).stdout).unwrap();
    // The second run sees other file times, another umask and another time zone.
    run_ok(Command::new("find").arg(&build).args([
        "-exec",
        "touch",
        "-h",
        "-d",
        "2031-05-06 07:08:09",
        "{}",
        "+",
    ]));
    let second = build_cmd(&build, &b);
    let mut shell = Command::new("sh");
    shell
        .args(["-c", "umask 077 && exec \"$0\" \"$@\""])
        .arg(second.get_program())
        .args(second.get_args())
        .current_dir(root.path())
        .env("TZ", "Asia/Tokyo");
    run_ok(&mut shell);

    let (files_a, files_b) = (files(&a), files(&b));
    // 11 per TEE machine (3 launch files, 4 cpio, 4 ISO) and their 5 image SBOMs, 2 GCP
    // tarballs and 3 SBOMs, the qcow2, 3 manifest files.
    assert_eq!(files_a.len(), 2 * (11 + 5) + (2 + 3) + 1 + 3, "{:?}", files_a.keys());
    assert_eq!(files_a.keys().collect::<Vec<_>>(), files_b.keys().collect::<Vec<_>>());
    for (path, bytes) in &files_a {
        assert!(bytes == &files_b[path], "{path} differs between the two runs");
    }

    if tool_on_path("sha256sum").is_none() {
        return;
    }
    let checked =
        run_ok(Command::new("sha256sum").args(["-c", "--strict", "sha256sum.txt"]).current_dir(&a));
    let checked = String::from_utf8(checked.stdout).unwrap();
    assert_eq!(checked.lines().filter(|l| l.ends_with(": OK")).count(), 2 * (11 + 5) + (2 + 3) + 1);
    let sum = run_ok(Command::new("sha256sum").arg("sha256sum.txt").current_dir(&a));
    let digest = String::from_utf8(sum.stdout).unwrap();
    let digest = digest.split(' ').next().unwrap();
    assert_eq!(fs::read_to_string(a.join("digest.txt")).unwrap(), format!("{digest}\n"));
    assert_eq!(stdout, format!("digest {digest}\n"));
}

#[test]
fn the_iso_is_what_pack_iso_writes_with_upstreams_flags() {
    let root = tempfile::tempdir().unwrap();
    let Some(build) = fake_build(root.path()) else { return };
    let out = root.path().join("out");
    run_ok(build_cmd(&build, &out).args(["--machine", "sev"]));
    // The flags of upstream's cpio_to_iso.sh as `secretvm pack iso` spells them (see iso.rs).
    let iso = root.path().join("pack.iso");
    run_ok(
        secretvm()
            .args(["pack", "iso", "--owner-root", "--all-times-epoch", "--xorriso-compat"])
            .arg("--source-date-epoch=946684800")
            .arg(out.join("sev/rootfs-gpu-dev.cpio"))
            .arg("-o")
            .arg(&iso),
    );
    assert!(fs::read(&iso).unwrap() == fs::read(out.join("sev/rootfs-gpu-dev.iso")).unwrap());
}

#[test]
fn machine_selects_a_subset_and_the_lock_hash_is_recorded() {
    let root = tempfile::tempdir().unwrap();
    let Some(build) = fake_build(root.path()) else { return };
    let out = root.path().join("out");
    let lock = root.path().join("secretvm.lock");
    fs::write(&lock, "version = 1\n").unwrap();
    run_ok(build_cmd(&build, &out).args(["--machine", "tdx", "--lock"]).arg(&lock));
    let mut names: Vec<String> = files(&out).into_keys().collect();
    names.sort();
    let mut want: Vec<String> =
        ["digest.txt", "encryptedfs.qcow2", "manifest.json", "sha256sum.txt"]
            .map(String::from)
            .into();
    for name in ["bzImage", "initramfs.cpio.gz", "initramfs.spdx.json", "ovmf.fd"] {
        want.push(format!("tdx/{name}"));
    }
    for variant in ["dev", "gpu-dev", "gpu-prod", "prod"] {
        want.push(format!("tdx/rootfs-{variant}.cpio"));
        want.push(format!("tdx/rootfs-{variant}.iso"));
        want.push(format!("tdx/rootfs-{variant}.spdx.json"));
    }
    want.sort();
    assert_eq!(names, want);

    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let machines: Vec<&str> = manifest["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(machines, ["tdx"]);
    assert_eq!(manifest["complete"], false);
    if tool_on_path("sha256sum").is_some() {
        let sum = run_ok(Command::new("sha256sum").arg(&lock)).stdout;
        let sum = String::from_utf8(sum).unwrap();
        assert_eq!(manifest["lock_sha256"], sum.split(' ').next().unwrap());
    }
    assert_eq!(manifest["git_revision"], "0123456789abcdef0123456789abcdef01234567");

    // Another machine into the same directory: the tdx files stay but are named as not listed.
    let stderr = run_ok(build_cmd(&build, &out).args(["--machine", "gcp-tdx"])).stderr;
    let stderr = String::from_utf8(stderr).unwrap();
    assert!(
        stderr.contains("not in this manifest (left from an earlier run?): tdx/bzImage, "),
        "{stderr}"
    );
    let sums = fs::read_to_string(out.join("sha256sum.txt")).unwrap();
    assert!(!sums.contains("  tdx/") && sums.contains("gcp-tdx/rootfs-dev.wic.tar.gz"), "{sums}");
}

#[test]
fn artifact_selects_the_boot_chain_and_its_measurements_do_not_change() {
    let root = tempfile::tempdir().unwrap();
    let Some(build) = fake_build(root.path()) else { return };
    let full = root.path().join("full");
    run_ok(&mut build_cmd(&build, &full));
    // Without any rootfs in the deploy tree, the boot chain alone still builds.
    for machine in ["tdx", "sev"] {
        let dir = build.join(format!("tmp-{machine}-glibc/deploy/images/secret-vm-{machine}"));
        for variant in ["dev", "prod", "gpu-dev", "gpu-prod"] {
            let link = format!("secret-vm-rootfs-{variant}-secret-vm-{machine}.rootfs.cpio");
            fs::remove_file(dir.join(link)).unwrap();
        }
    }
    let boot = root.path().join("boot");
    let chain = ["--artifact", "bzImage", "--artifact", "initramfs.cpio.gz"];
    run_ok(build_cmd(&build, &boot).args(chain).args(["--artifact", "ovmf.fd"]));

    let got = files(&boot);
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "digest.txt",
            "encryptedfs.qcow2",
            "manifest.json",
            "sev/bzImage",
            "sev/initramfs.cpio.gz",
            "sev/ovmf.fd",
            "sha256sum.txt",
            "tdx/bzImage",
            "tdx/initramfs.cpio.gz",
            "tdx/ovmf.fd",
        ]
    );
    let want = files(&full);
    for (name, bytes) in &got {
        if !["digest.txt", "manifest.json", "sha256sum.txt"].contains(&name.as_str()) {
            assert!(want.get(name) == Some(bytes), "{name} differs from the full build's");
        }
    }
    // The expected measurements are the full build's: they depend on the boot chain only.
    let json = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap()
    };
    let (boot_machines, full_machines) =
        (json(&boot)["machines"].clone(), json(&full)["machines"].clone());
    assert_eq!(boot_machines.as_array().map(Vec::len), Some(2));
    assert_eq!(boot_machines[0], full_machines[0]);
    assert_eq!(boot_machines[1], full_machines[1]);
    assert_eq!(full_machines[1]["name"], "sev");
    // The manifest says whether it covers the whole release.
    assert_eq!(json(&full)["complete"], true);
    assert_eq!(json(&boot)["complete"], false);

    // An artifact no selected machine has is named with what there is.
    let err = run_err(build_cmd(&build, &boot).args(["--machine", "gcp-tdx"]).args(chain));
    assert!(
        err.contains(
            "unknown artifact \"bzImage\" for machine(s) gcp-tdx, expected one of rootfs-dev.wic, \
             rootfs-prod.wic"
        ),
        "{err}"
    );
}

#[test]
fn errors_say_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let config = secretvm_testkit::workspace().join("yocto/secretvm.toml");
    // No container engine reachable (hidden: PATH holds only git): the build stops at
    // preflight, before any checkout, and says what to install or how to build natively.
    let bin = root.path().join("bin");
    fs::create_dir(&bin).unwrap();
    if let Some(git) = tool_on_path("git") {
        symlink(git, bin.join("git")).unwrap();
    }
    let err = run_err(
        secretvm()
            .arg("build")
            .arg("--config")
            .arg(&config)
            .env("PATH", &bin)
            .current_dir(root.path()),
    );
    assert!(err.contains("no container engine is reachable"), "{err}");
    assert!(err.contains("apt-get install docker.io"), "{err}");
    assert!(err.contains("apt-get install podman"), "{err}");
    assert!(err.contains("--engine native"), "{err}");
    assert!(!root.path().join("yocto").exists(), "nothing may be checked out before preflight");

    // Root is refused as the build user, on the command line and by preflight.
    let err = run_err(secretvm().args(["build", "--user", "0:0"]).arg("--config").arg(&config));
    assert!(err.contains("bitbake refuses to run as root"), "{err}");
    if crate::support::is_root() {
        let err = run_err(
            secretvm()
                .args(["build", "--engine", "native", "--min-free-gb", "0"])
                .arg("--config")
                .arg(&config)
                .current_dir(root.path()),
        );
        assert!(err.contains("the build would run as uid 0"), "{err}");
        assert!(!root.path().join("build").exists(), "preflight failed: nothing may be written");
    }

    let err = run_err(
        secretvm()
            .args(["build", "--from-deploy", ".", "--machine", "arm"])
            .arg("--config")
            .arg(&config)
            .current_dir(root.path()),
    );
    assert!(err.contains("unknown machine \"arm\", expected one of tdx, sev, gcp-tdx"), "{err}");

    // An empty build directory: every artifact of the machine is named with its expected path.
    let err = run_err(
        secretvm()
            .args(["build", "--from-deploy", ".", "--machine", "gcp-tdx"])
            .arg("--config")
            .arg(&config)
            .current_dir(root.path()),
    );
    assert!(err.contains("5 artifact(s) cannot be collected"), "{err}");
    assert!(
        err.contains(
            "gcp-tdx: rootfs-prod.wic: expected ./tmp-gcp-tdx-glibc/deploy/images/secret-vm-gcp-tdx/\
             secret-vm-rootfs-prod-secret-vm-gcp-tdx.rootfs.wic"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "gcp-tdx: initramfs.spdx.json: expected ./tmp-gcp-tdx-glibc/deploy/images/\
             secret-vm-gcp-tdx/secret-vm-initramfs-secret-vm-gcp-tdx.rootfs.spdx.json"
        ),
        "{err}"
    );
}
