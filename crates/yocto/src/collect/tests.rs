//! Collection on a fake deploy tree shaped like a real bitbake build: for every machine of the
//! real config, stable links (relative, as bitbake makes them) to timestamped files, and decoy
//! timestamped files of an older build next to them.
//!
//! Expected values come from outside our code: the launch files and their measurements are the
//! shared measurement vectors (`cases.json`, computed by dstack-mr, sev-snp-measure and
//! upstream's scripts), file contents are the inputs the test wrote, the empty 300G qcow2 is
//! qemu-img's (vector `packing/empty-300G.qcow2`), and the ISO, tarball, qcow2 and checksum
//! list are read back by isoinfo, GNU tar, qemu-img and sha256sum.

#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use secretvm_pack::initramfs::{self, Kind, Node};
use serde_json::Value;

use super::*;
use crate::config::{self, Config};

const CURRENT: &str = "20261125093000";
const DECOY: &str = "20261124080000";

fn config() -> Config {
    config::parse("yocto/secretvm.toml", include_str!("../../../../yocto/secretvm.toml")).unwrap()
}

/// The launch files of the measurement vectors, per machine: the TDX case
/// `tdx-full-secretvm-vmlinuz-2g` (upstream's TDX cmdline) and the SEV case
/// `secretvm-sev-image-fingerprints`.
struct Vectors {
    cases: Vec<Value>,
    tdx: [Vec<u8>; 3],
    sev: [Vec<u8>; 3],
}

fn vectors() -> Option<Vectors> {
    let v = |name: &str| secretvm_testkit::vector(&format!("measure/{name}"));
    let cases = serde_json::from_slice(&v("cases.json")?).unwrap();
    let initrd = v("inputs/initrd/initramfs.cpio.gz")?;
    Some(Vectors {
        cases,
        tdx: [
            v("inputs/firmware/OVMF.trixie.fd")?,
            v("inputs/kernel/vmlinuz-6.12.117+deb13-cloud-amd64")?,
            initrd.clone(),
        ],
        sev: [v("inputs/firmware/OVMF.amdsev.fd")?, v("inputs/kernel/memtest86+x64.efi")?, initrd],
    })
}

fn case<'a>(vectors: &'a Vectors, id: &str) -> &'a Value {
    vectors.cases.iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no case {id}"))
}

/// A small root file system as a plain newc cpio, one file naming `variant`.
fn rootfs_cpio(variant: &str) -> Vec<u8> {
    let node = |path: &str, kind: Kind<Vec<u8>>, permissions: u32| Node {
        path: path.to_owned(),
        kind,
        permissions,
        uid: 1000,
        gid: 1000,
        mtime: 1_700_000_000,
        link_group: None,
    };
    let nodes = vec![
        node("etc", Kind::Directory, 0o755),
        node("etc/variant", Kind::File { source: format!("{variant}\n").into_bytes() }, 0o644),
        node("bin", Kind::Directory, 0o755),
        node("bin/sh", Kind::Symlink { target: "busybox".to_owned() }, 0o777),
        node("bin/busybox", Kind::File { source: vec![0x7f; 3000] }, 0o755),
    ];
    let options = initramfs::Options { epoch: 1_800_000_000, owner: None, gzip_level: None };
    let open = |s: &Vec<u8>| -> io::Result<(u64, io::Cursor<Vec<u8>>)> {
        Ok((s.len() as u64, io::Cursor::new(s.clone())))
    };
    initramfs::write(nodes, &options, open, Vec::new()).unwrap()
}

/// A tiny wic disk: some data, a run of zeros (a hole in the sparse tar), more data.
fn wic(variant: &str) -> Vec<u8> {
    let mut disk = vec![0u8; 64 << 10];
    disk[..variant.len()].copy_from_slice(variant.as_bytes());
    disk[40 << 10] = 0x55;
    disk
}

/// Where a stable deploy name points: `a.rootfs.cpio` -> `a.rootfs-<stamp>.cpio`,
/// `bzImage` -> `bzImage-<stamp>.bin`.
fn stamped(deploy: &str, stamp: &str) -> String {
    for ext in [".cpio.gz", ".cpio", ".wic", ".fd", ".spdx.json"] {
        if let Some(stem) = deploy.strip_suffix(ext) {
            return format!("{stem}-{stamp}{ext}");
        }
    }
    format!("{deploy}-{stamp}.bin")
}

/// The fake build directory: per machine the deploy directory with link + current file +
/// decoy for every artifact; returns the current sources' bytes by `<machine>/<name>`.
fn fake_build(build: &Path, config: &Config, v: &Vectors) -> BTreeMap<String, Vec<u8>> {
    let mut sources = BTreeMap::new();
    for m in &config.machines {
        let dir = build.join(&m.deploy_dir);
        fs::create_dir_all(&dir).unwrap();
        // Each file deployed so far: its link, the file behind it and that file's SHA-256.
        let mut deployed: Vec<(String, String, String)> = Vec::new();
        for a in &m.artifacts {
            let launch = match m.name.as_str() {
                "tdx" => Some(&v.tdx),
                "sev" => Some(&v.sev),
                _ => None,
            };
            let bytes = match (a.name.as_str(), launch) {
                ("ovmf.fd", Some(l)) => l[0].clone(),
                ("bzImage", Some(l)) => l[1].clone(),
                ("initramfs.cpio.gz", Some(l)) => l[2].clone(),
                (name, _) if a.post == Post::Iso => rootfs_cpio(&format!("{}/{name}", m.name)),
                _ if a.post == Post::Sbom => sbom(&a.deploy, &deployed),
                (name, _) => wic(&format!("{}/{name}", m.name)),
            };
            fs::write(dir.join(stamped(&a.deploy, DECOY)), b"an older build").unwrap();
            fs::write(dir.join(stamped(&a.deploy, CURRENT)), &bytes).unwrap();
            deployed.push((a.deploy.clone(), stamped(&a.deploy, CURRENT), sha256_hex(&bytes)));
            symlink(stamped(&a.deploy, CURRENT), dir.join(&a.deploy)).unwrap();
            sources.insert(format!("{}/{}", m.name, a.name), bytes);
        }
    }
    sources
}

/// The SBOM deployed as `deploy`, as poky writes it: it lists the image file deployed under
/// the same link name among `deployed` (link, file, SHA-256) with its SHA-256, or, with none
/// there (gcp-tdx's initramfs is not collected), a file of its own name.
fn sbom(deploy: &str, deployed: &[(String, String, String)]) -> Vec<u8> {
    match deployed.iter().find(|(link, ..)| Post::sbom_describes(deploy, link)) {
        Some((_, file, sha256)) => secretvm_testkit::image_sbom(file, sha256),
        None => secretvm_testkit::image_sbom(deploy, &"e".repeat(64)),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    secretvm_measure::sha256(bytes).to_string()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn collect_all(build: &Path, out: &Path, config: &Config) -> Result<Collected> {
    let machines = config.select_machines(&[]).unwrap();
    collect(&machines, build, out, &mut |_| {})
}

#[test]
fn collects_through_the_links_and_ignores_decoys() {
    let Some(v) = vectors() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (build, out) = (dir.path().join("build"), dir.path().join("artifacts"));
    let config = config();
    let sources = fake_build(&build, &config, &v);
    let collected = collect_all(&build, &out, &config).unwrap();

    let mut paths: Vec<&str> = collected.files.iter().map(|f| f.path.as_str()).collect();
    paths.sort_unstable();
    let mut want = vec!["encryptedfs.qcow2"];
    for m in ["sev", "tdx"] {
        for name in ["bzImage", "initramfs.cpio.gz", "ovmf.fd"] {
            want.push(Box::leak(format!("{m}/{name}").into_boxed_str()));
        }
        want.push(Box::leak(format!("{m}/initramfs.spdx.json").into_boxed_str()));
        for variant in ["dev", "gpu-dev", "gpu-prod", "prod"] {
            want.push(Box::leak(format!("{m}/rootfs-{variant}.cpio").into_boxed_str()));
            want.push(Box::leak(format!("{m}/rootfs-{variant}.iso").into_boxed_str()));
            want.push(Box::leak(format!("{m}/rootfs-{variant}.spdx.json").into_boxed_str()));
        }
    }
    want.push("gcp-tdx/rootfs-dev.wic.tar.gz");
    want.push("gcp-tdx/rootfs-prod.wic.tar.gz");
    want.extend(["gcp-tdx/initramfs.spdx.json", "gcp-tdx/rootfs-dev.spdx.json"]);
    want.push("gcp-tdx/rootfs-prod.spdx.json");
    want.sort_unstable();
    assert_eq!(paths, want);

    // Copies are the linked files, not the decoys; the recorded size and digest are theirs.
    for (rel, bytes) in sources.iter().filter(|(rel, _)| !rel.ends_with(".wic")) {
        assert_eq!(&fs::read(out.join(rel)).unwrap(), bytes, "{rel}");
        let entry = collected.files.iter().find(|f| &f.path == rel).unwrap();
        assert_eq!(entry.len, bytes.len() as u64);
        assert_eq!(entry.sha256, secretvm_measure::sha256(bytes), "{rel}");
    }
    // Every recorded digest is what sha256sum computes from the file on disk.
    for f in &collected.files {
        let line = run(Command::new("sha256sum").arg(out.join(&f.path)));
        assert_eq!(line.split(' ').next().unwrap(), f.sha256.to_string(), "{}", f.path);
        assert_eq!(fs::metadata(out.join(&f.path)).unwrap().len(), f.len);
    }
    // No raw wic, no decoy, no temporary file.
    let mut names: Vec<String> = fs::read_dir(out.join("gcp-tdx"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "initramfs.spdx.json",
            "rootfs-dev.spdx.json",
            "rootfs-dev.wic.tar.gz",
            "rootfs-prod.spdx.json",
            "rootfs-prod.wic.tar.gz"
        ]
    );
}

#[test]
fn the_iso_lists_with_isoinfo_as_upstream_makes_it() {
    let Some(v) = vectors() else { return };
    let Some(_) = secretvm_testkit::tool_on_path("isoinfo") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (build, out) = (dir.path().join("build"), dir.path().join("artifacts"));
    let config = config();
    fake_build(&build, &config, &v);
    collect_all(&build, &out, &config).unwrap();

    let listing =
        run(Command::new("isoinfo").args(["-R", "-l", "-i"]).arg(out.join("tdx/rootfs-dev.iso")));
    // Owner root (isoinfo prints ids in octal: 0 0) and every date 2000-01-01, as upstream's
    // `-uid 0 -gid 0` and `-volume_date all_file_dates` with SOURCE_DATE_EPOCH 2000-01-01.
    let mut seen = Vec::new();
    for line in listing.lines().filter(|l| l.starts_with(['-', 'd', 'l'])) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((fields[2], fields[3]), ("0", "0"), "{line}");
        assert!(line.contains(" Jan  1 2000 "), "{line}");
        let name = line.split_once("]  ").unwrap().1.trim_end();
        if name != "." && name != ".." {
            seen.push(format!("{} {} {name}", fields[0], fields[4]));
        }
    }
    // The tree rootfs_cpio made, with its modes and sizes ("tdx/rootfs-dev.cpio\n" is 20 bytes).
    assert_eq!(
        seen,
        [
            "drwxr-xr-x 2048 bin",
            "drwxr-xr-x 2048 etc",
            "-rwxr-xr-x 3000 busybox",
            "lrwxrwxrwx 0 sh -> busybox",
            "-rw-r--r-- 20 variant",
        ]
    );
    let pvd = run(Command::new("isoinfo").args(["-d", "-i"]).arg(out.join("tdx/rootfs-dev.iso")));
    assert!(pvd.contains("Volume id: ISOIMAGE"), "{pvd}");
}

#[test]
fn the_gcp_tarball_holds_the_wic_as_disk_raw() {
    let Some(v) = vectors() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (build, out) = (dir.path().join("build"), dir.path().join("artifacts"));
    let config = config();
    let sources = fake_build(&build, &config, &v);
    collect_all(&build, &out, &config).unwrap();

    let tar = out.join("gcp-tdx/rootfs-prod.wic.tar.gz");
    let listing = run(Command::new("tar").arg("-tvzf").arg(&tar));
    let fields: Vec<&str> = listing.split_whitespace().collect();
    // GNU tar: mode, owner/group, size, date, time, name; date 2000-01-01 is SOURCE_DATE_EPOCH.
    assert_eq!(fields[2], (64 << 10).to_string(), "{listing}");
    assert_eq!(fields[3], "2000-01-01", "{listing}");
    assert_eq!(fields[5], "disk.raw", "{listing}");
    let extracted = dir.path().join("x");
    fs::create_dir(&extracted).unwrap();
    run(Command::new("tar").arg("-xzf").arg(&tar).arg("-C").arg(&extracted));
    assert_eq!(fs::read(extracted.join("disk.raw")).unwrap(), sources["gcp-tdx/rootfs-prod.wic"]);
}

#[test]
fn the_encrypted_fs_disk_is_qemu_imgs_300g_image() {
    let Some(v) = vectors() else { return };
    let Some(qcow2) = secretvm_testkit::vector("packing/empty-300G.qcow2") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (build, out) = (dir.path().join("build"), dir.path().join("artifacts"));
    let config = config();
    fake_build(&build, &config, &v);
    collect_all(&build, &out, &config).unwrap();
    assert!(fs::read(out.join("encryptedfs.qcow2")).unwrap() == qcow2);
    if secretvm_testkit::tool_on_path("qemu-img").is_some() {
        let info = run(Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(out.join("encryptedfs.qcow2")));
        let info: Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["virtual-size"], 322_122_547_200u64);
        assert_eq!(info["format"], "qcow2");
    }
}

#[test]
fn missing_artifacts_are_all_named_with_their_expected_paths() {
    let Some(v) = vectors() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (build, out) = (dir.path().join("build"), dir.path().join("artifacts"));
    let config = config();
    fake_build(&build, &config, &v);
    let gpu = build
        .join("tmp-tdx-glibc/deploy/images/secret-vm-tdx")
        .join("secret-vm-rootfs-gpu-prod-secret-vm-tdx.rootfs.cpio");
    let ovmf = build.join("tmp-sev-glibc/deploy/images/secret-vm-sev/ovmf.fd");
    fs::remove_file(&gpu).unwrap();
    fs::remove_file(&ovmf).unwrap();
    // A dangling link is missing too: its timestamped file is gone.
    let wic_dir = build.join("tmp-gcp-tdx-glibc/deploy/images/secret-vm-gcp-tdx");
    fs::remove_file(
        wic_dir.join(stamped("secret-vm-rootfs-dev-secret-vm-gcp-tdx.rootfs.wic", CURRENT)),
    )
    .unwrap();

    let err = collect_all(&build, &out, &config).unwrap_err();
    let Error::Unresolved(problems) = &err else { panic!("{err}") };
    assert_eq!(problems.len(), 3, "{err}");
    let message = err.to_string();
    assert!(message.starts_with("3 artifact(s) cannot be collected:\n"), "{message}");
    assert!(
        message.contains(&format!(
            "tdx: rootfs-gpu-prod.cpio: expected {}, which does not exist",
            gpu.display()
        )),
        "{message}"
    );
    assert!(
        message
            .contains(&format!("sev: ovmf.fd: expected {}, which does not exist", ovmf.display())),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "gcp-tdx: rootfs-dev.wic: expected {}, a link to {}, which does not exist",
            wic_dir.join("secret-vm-rootfs-dev-secret-vm-gcp-tdx.rootfs.wic").display(),
            stamped("secret-vm-rootfs-dev-secret-vm-gcp-tdx.rootfs.wic", CURRENT)
        )),
        "{message}"
    );
    // Nothing was written.
    assert!(!out.exists());
}

#[test]
fn a_missing_deploy_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = config();
    let machines = config.select_machines(&["gcp-tdx"]).unwrap();
    let err = collect(&machines, dir.path(), &dir.path().join("out"), &mut |_| {}).unwrap_err();
    let deploy = dir.path().join("tmp-gcp-tdx-glibc/deploy/images/secret-vm-gcp-tdx");
    assert!(
        err.to_string().contains(&format!(
            "gcp-tdx: rootfs-dev.wic: expected {}/secret-vm-rootfs-dev-secret-vm-gcp-tdx.rootfs.wic, \
             but the deploy directory {} does not exist (was mc:gcp-tdx built?)",
            deploy.display(),
            deploy.display()
        )),
        "{err}"
    );
}

#[test]
fn links_escaping_the_deploy_directory_are_refused() {
    let Some(v) = vectors() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (build, out) = (dir.path().join("build"), dir.path().join("artifacts"));
    let config = config();
    fake_build(&build, &config, &v);
    let deploy = build.join("tmp-tdx-glibc/deploy/images/secret-vm-tdx");
    let outside = dir.path().join("outside.bin");
    fs::write(&outside, b"not a build output").unwrap();
    fs::remove_file(deploy.join("bzImage")).unwrap();
    symlink("../../../../../outside.bin", deploy.join("bzImage")).unwrap();
    fs::remove_file(deploy.join("ovmf.fd")).unwrap();
    symlink("/etc/hostname", deploy.join("ovmf.fd")).unwrap();
    let sub = deploy.join("subdir");
    fs::create_dir(&sub).unwrap();
    let initramfs = deploy.join("secret-vm-initramfs-secret-vm-tdx.rootfs.cpio.gz");
    fs::remove_file(&initramfs).unwrap();
    symlink("subdir", &initramfs).unwrap();

    let machines = config.select_machines(&["tdx"]).unwrap();
    let err = collect(&machines, &build, &out, &mut |_| {}).unwrap_err();
    let Error::Unresolved(problems) = &err else { panic!("{err}") };
    let canonical = fs::canonicalize(&outside).unwrap();
    assert_eq!(
        problems[0],
        Problem {
            machine: "tdx".into(),
            artifact: "bzImage".into(),
            path: deploy.join("bzImage"),
            kind: ProblemKind::Escapes { target: canonical.clone() },
        }
    );
    assert!(
        err.to_string().contains(&format!(
            "resolves to {}, outside the deploy directory",
            canonical.display()
        )),
        "{err}"
    );
    assert_eq!(problems[1].kind, ProblemKind::NotAFile { target: fs::canonicalize(&sub).unwrap() });
    assert!(
        matches!(&problems[2].kind, ProblemKind::Escapes { target } if target.starts_with("/etc")),
        "{err}"
    );
    assert_eq!(problems.len(), 3, "{err}");
    assert!(!out.exists());
}

/// Collects and writes the manifest; returns the output directory's manifest as JSON.
fn collect_with_manifest(dir: &Path, v: &Vectors) -> (PathBuf, Value) {
    let (build, out) = (dir.join("build"), dir.join("artifacts"));
    let config = config();
    fake_build(&build, &config, v);
    let collected = collect_all(&build, &out, &config).unwrap();
    let revision = "0123456789abcdef0123456789abcdef01234567";
    write_manifest(&out, &collected, Some(revision), None, true).unwrap();
    let json = serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    (out, json)
}

#[test]
fn the_manifest_measurements_equal_the_vectors() {
    let Some(v) = vectors() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_, json) = collect_with_manifest(dir.path(), &v);
    let machines = json["machines"].as_array().unwrap();
    assert_eq!(
        machines.iter().map(|m| m["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["tdx", "sev", "gcp-tdx"]
    );

    // TDX: the vector with upstream's TDX cmdline, 1 vCPU, 2 GiB.
    let want = &case(&v, "tdx-full-secretvm-vmlinuz-2g")["expected"];
    let params = &case(&v, "tdx-full-secretvm-vmlinuz-2g")["params"];
    let tdx = &machines[0]["expected"];
    assert_eq!(tdx["tee"], "tdx");
    assert_eq!(tdx["launch"]["measured_cmdline"], params["measured_cmdline"]);
    assert_eq!(tdx["launch"]["memory_bytes"], params["memory_bytes"]);
    assert_eq!(tdx["launch"]["qemu_acpi_data_size"], params["acpi_data_size"]);
    assert_eq!(tdx["mrtd"]["qemu_9_and_later"], want["mrtd_single_pass"]);
    assert_eq!(tdx["mrtd"]["qemu_8"], want["mrtd_two_pass"]);
    assert_eq!(tdx["rtmr1"]["qemu_up_to_10_1"], want["rtmr1"]);
    assert_eq!(tdx["rtmr1"]["qemu_10_2_and_later"], want["rtmr1_if_qemu_ge_10_2"]);
    assert_eq!(tdx["rtmr2"], want["rtmr2"]);
    assert_eq!(tdx["rtmr0"]["computed"], false);
    assert!(tdx["rtmr0"]["reason"].as_str().unwrap().contains("ACPI"));

    // SEV: exactly upstream's sev_image_fingerprints.json for these files, and a verifier holding
    // it reproduces the SNP measurement of the vector's cmdline.
    let want = &case(&v, "secretvm-sev-image-fingerprints")["expected"];
    let sev = &machines[1]["expected"];
    assert_eq!(sev["tee"], "sev-snp");
    assert_eq!(sev["fingerprints"], want["sev_image_fingerprints.json"]);
    let fingerprints: secretvm_measure::SevImageFingerprints =
        serde_json::from_value(sev["fingerprints"].clone()).unwrap();
    let cmdline = want["cmdline"].as_str().unwrap();
    assert_eq!(
        fingerprints.measurement(cmdline).unwrap().measurement.to_string(),
        want["measurement_for_cmdline"].as_str().unwrap()
    );
    assert_eq!(sev["measurement"]["computed"], false);

    assert_eq!(machines[2]["expected"]["tee"], "none");
}

#[test]
fn sha256sum_checks_the_output_and_digest_txt_is_its_hash() {
    let Some(v) = vectors() else { return };
    let Some(_) = secretvm_testkit::tool_on_path("sha256sum") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (out, json) = collect_with_manifest(dir.path(), &v);
    let checked =
        run(Command::new("sha256sum").args(["-c", "--strict", "sha256sum.txt"]).current_dir(&out));
    // encryptedfs.qcow2; tdx and sev: 11 launch and root file system files and 5 SBOMs each;
    // gcp-tdx: 2 disks and 3 SBOMs.
    assert_eq!(checked.lines().count(), 1 + 2 * (11 + 5) + (2 + 3), "{checked}");
    assert!(checked.lines().all(|l| l.ends_with(": OK")), "{checked}");
    let sum = run(Command::new("sha256sum").arg("sha256sum.txt").current_dir(&out));
    let digest = sum.split(' ').next().unwrap();
    assert_eq!(fs::read_to_string(out.join("digest.txt")).unwrap(), format!("{digest}\n"));
    assert_eq!(json["digest"], digest);
    assert_eq!(json["git_revision"], "0123456789abcdef0123456789abcdef01234567");
    assert_eq!(json["lock_sha256"], Value::Null);
    // manifest.json's files agree with sha256sum.txt.
    let listed: BTreeMap<String, String> = fs::read_to_string(out.join("sha256sum.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let (hash, path) = l.split_once("  ").unwrap();
            (path.to_owned(), hash.to_owned())
        })
        .collect();
    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), listed.len());
    for f in files {
        assert_eq!(listed[f["path"].as_str().unwrap()], f["sha256"].as_str().unwrap());
    }
}

#[test]
fn two_runs_give_identical_bytes() {
    let Some(v) = vectors() else { return };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (out_a, _) = collect_with_manifest(a.path(), &v);
    let (out_b, _) = collect_with_manifest(b.path(), &v);
    let list = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for m in ["", "tdx", "sev", "gcp-tdx"] {
            for e in fs::read_dir(dir.join(m)).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_file() {
                    let name = format!("{m}/{}", e.file_name().to_string_lossy());
                    files.insert(name, fs::read(e.path()).unwrap());
                }
            }
        }
        files
    };
    let (files_a, files_b) = (list(&out_a), list(&out_b));
    assert_eq!(files_a.len(), 1 + 2 * (11 + 5) + (2 + 3) + 3);
    assert!(files_a == files_b, "the two runs differ");
}

#[test]
fn sboms_must_describe_the_images_collected() {
    let Some(v) = vectors() else { return };
    let config = config();
    // Builds the fake tree, lets `change` replace the SBOM deployed as `deploy` in `machine`'s
    // deploy directory, and collects: the error, and whether the SBOM reached `artifacts/`.
    let collect_with = |machine: &str, deploy: &str, sbom: &dyn Fn(&[u8]) -> Vec<u8>| {
        let dir = tempfile::tempdir().unwrap();
        let (build, out) = (dir.path().join("build"), dir.path().join("artifacts"));
        fake_build(&build, &config, &v);
        let m = config.machines.iter().find(|m| m.name == machine).unwrap();
        let a = m.artifacts.iter().find(|a| a.deploy == deploy).unwrap();
        let file = build.join(&m.deploy_dir).join(stamped(deploy, CURRENT));
        let changed = sbom(&fs::read(&file).unwrap());
        fs::write(&file, changed).unwrap();
        let err = collect_all(&build, &out, &config).unwrap_err();
        // The message with its causes, as the CLI prints it.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        (message, out.join(machine).join(&a.name).exists())
    };

    // The SBOM of another build of tdx's rootfs-dev: same file name, another digest.
    let other = "5".repeat(64);
    let link = "secret-vm-rootfs-dev-secret-vm-tdx.rootfs";
    let stale =
        |_: &[u8]| secretvm_testkit::image_sbom(&stamped(&format!("{link}.cpio"), CURRENT), &other);
    let (err, written) = collect_with("tdx", &format!("{link}.spdx.json"), &stale);
    let cpio = rootfs_cpio("tdx/rootfs-dev.cpio");
    assert_eq!(
        err,
        format!(
            "tdx/rootfs-dev.spdx.json: refused as the SBOM of tdx/rootfs-dev.cpio: it gives \
             {link}-{CURRENT}.cpio the SHA-256 {other}, but the collected image has {}: it \
             describes another build of the image",
            sha256_hex(&cpio)
        )
    );
    assert!(!written, "a refused SBOM was copied");

    // An SBOM that names the older build's file (the decoy beside the current one).
    let decoy_name = stamped(&format!("{link}.cpio"), DECOY);
    let decoy = |_: &[u8]| secretvm_testkit::image_sbom(&decoy_name, &sha256_hex(&cpio));
    let (err, _) = collect_with("tdx", &format!("{link}.spdx.json"), &decoy);
    assert!(
        err.starts_with(&format!(
            "tdx/rootfs-dev.spdx.json: refused as the SBOM of tdx/rootfs-dev.cpio: it lists no \
             software_File named \"{link}-{CURRENT}.cpio\" (the image's file); it lists \
             {decoy_name}"
        )),
        "{err}"
    );

    // The GCP disk is not copied, so its digest is taken from the deployed wic.
    let gcp = "secret-vm-rootfs-prod-secret-vm-gcp-tdx.rootfs";
    let wrong =
        |_: &[u8]| secretvm_testkit::image_sbom(&stamped(&format!("{gcp}.wic"), CURRENT), &other);
    let (err, written) = collect_with("gcp-tdx", &format!("{gcp}.spdx.json"), &wrong);
    assert!(
        err.starts_with(
            "gcp-tdx/rootfs-prod.spdx.json: refused as the SBOM of gcp-tdx/rootfs-prod.wic: "
        ),
        "{err}"
    );
    assert!(
        err.ends_with(&format!(
            "but the collected image has {}: it describes another build of the image",
            sha256_hex(&wic("gcp-tdx/rootfs-prod.wic"))
        )),
        "{err}"
    );
    assert!(!written);

    // Not SPDX 3.0: an SPDX 2.2 document, and bytes that are not JSON.
    let spdx22 = |_: &[u8]| br#"{"spdxVersion":"SPDX-2.2","packages":[]}"#.to_vec();
    let (err, _) =
        collect_with("sev", "secret-vm-initramfs-secret-vm-sev.rootfs.spdx.json", &spdx22);
    assert_eq!(
        err,
        "sev/initramfs.spdx.json: refused as an image SBOM: not an SPDX 3.0 JSON-LD document: it \
         has no @context"
    );
    let truncated = |good: &[u8]| good[..good.len() / 2].to_vec();
    let (err, _) =
        collect_with("sev", "secret-vm-initramfs-secret-vm-sev.rootfs.spdx.json", &truncated);
    assert!(
        err.starts_with("sev/initramfs.spdx.json: refused as an image SBOM: not JSON: "),
        "{err}"
    );
}

#[test]
fn a_run_that_fails_after_writing_leaves_no_manifest_of_the_run_before() {
    let Some(v) = vectors() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = collect_with_manifest(dir.path(), &v);
    let manifest_files = [manifest::MANIFEST, manifest::DIGEST, manifest::SHA256SUM];
    for name in manifest_files {
        assert!(out.join(name).is_file(), "the first run wrote no {name}");
    }
    // A second build whose tdx kernel changed and whose last machine's SBOM is not JSON:
    // collection replaces tdx's files, then stops at gcp-tdx.
    let config = config();
    let build = dir.path().join("build");
    let tdx = &config.machines[0];
    assert_eq!(tdx.name, "tdx");
    let kernel = tdx.artifacts.iter().find(|a| a.name == "bzImage").unwrap();
    let deploy = build.join(&tdx.deploy_dir);
    let mut changed = fs::read(deploy.join(&kernel.deploy)).unwrap();
    changed.extend_from_slice(b"another build");
    fs::write(deploy.join(stamped(&kernel.deploy, CURRENT)), &changed).unwrap();
    let last = config.machines.last().unwrap();
    let sbom = last.artifacts.iter().find(|a| a.post == Post::Sbom).unwrap();
    fs::write(build.join(&last.deploy_dir).join(stamped(&sbom.deploy, CURRENT)), b"{").unwrap();

    let err = collect_all(&build, &out, &config).unwrap_err();
    assert!(matches!(err, Error::Sbom { .. }), "{err}");
    assert_eq!(fs::read(out.join("tdx/bzImage")).unwrap(), changed, "tdx was not collected");
    for name in manifest_files {
        assert!(!out.join(name).exists(), "{name} of the first run is still beside new files");
    }
}
