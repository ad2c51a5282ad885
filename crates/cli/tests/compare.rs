//! `secretvm compare` on archives GNU cpio wrote from two directory trees, and on two releases
//! `secretvm build --from-deploy` made from deploy trees that differ in one file of one root
//! file system. What must be reported is what the test changed, nothing more.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::{run_ok, secretvm, tool_on_path};

/// Runs `secretvm compare a b`; returns (exit code, stdout).
fn compare(a: &Path, b: &Path) -> (i32, String) {
    let out = secretvm().arg("compare").arg(a).arg(b).output().unwrap();
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap())
}

/// GNU cpio's newc archive of `dir`, entries sorted, every time set to 1 first.
fn gnu_cpio(dir: &Path, out: &Path) {
    run_ok(Command::new("find").arg(dir).args(["-exec", "touch", "-h", "-d", "@1", "{}", "+"]));
    let script = format!(
        "cd '{}' && find . -mindepth 1 -printf '%P\\n' | LC_ALL=C sort | cpio -o -H newc \
         --quiet > '{}'",
        dir.display(),
        out.display()
    );
    run_ok(Command::new("sh").arg("-c").arg(script));
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn gnu_cpio_archives_differ_where_the_trees_do() {
    let Some(_) = tool_on_path("cpio") else { return };
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    for dir in [&a, &b] {
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::create_dir_all(dir.join("usr/bin")).unwrap();
        fs::write(dir.join("etc/hostname"), "secret-vm\n").unwrap();
        fs::write(dir.join("etc/motd"), "hello\n").unwrap();
        fs::write(dir.join("usr/bin/tool"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(dir.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("usr/bin", dir.join("bin")).unwrap();
    }
    fs::write(b.join("etc/hostname"), "secret-vm-2\n").unwrap();
    fs::set_permissions(b.join("usr/bin/tool"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::remove_file(b.join("etc/motd")).unwrap();
    fs::write(b.join("etc/issue"), "new\n").unwrap();
    fs::remove_file(b.join("bin")).unwrap();
    symlink("usr/sbin", b.join("bin")).unwrap();
    let (ca, cb) = (root.path().join("a.cpio"), root.path().join("b.cpio"));
    gnu_cpio(&a, &ca);
    gnu_cpio(&b, &cb);

    let (code, out) = compare(&ca, &cb);
    assert_eq!(code, 1, "{out}");
    let want = format!(
        "{}: 5 entries differ\n\
         \x20 bin: size 7 -> 8, target usr/bin -> usr/sbin\n\
         \x20 etc/hostname: size 10 -> 12, sha256 {} -> {}\n\
         \x20 etc/issue: only in the second\n\
         \x20 etc/motd: only in the first\n\
         \x20 usr/bin/tool: mode 0755 -> 0700\n",
        ca.display(),
        sha256(b"secret-vm\n"),
        sha256(b"secret-vm-2\n"),
    );
    assert_eq!(out, want);

    // An archive against itself, and against a copy GNU cpio makes of the same tree.
    assert_eq!(compare(&ca, &ca), (0, "identical\n".to_owned()));
    let again = root.path().join("again.cpio");
    gnu_cpio(&a, &again);
    assert_eq!(compare(&ca, &again), (0, "identical\n".to_owned()));
}

#[test]
fn two_releases_differ_in_the_root_file_system_that_changed() {
    let root = tempfile::tempdir().unwrap();
    let Some(build) = crate::build::fake_build(root.path()) else { return };
    let (a, b, again) = (root.path().join("a"), root.path().join("b"), root.path().join("again"));
    run_ok(&mut crate::build::build_cmd(&build, &a));
    run_ok(&mut crate::build::build_cmd(&build, &again));
    let (code, out) = compare(&a, &again);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 files differ, 0 only in the first, 0 only in the second"), "{out}");

    // One file of the tdx dev root file system changes; the rest of the build stays.
    let tree = root.path().join("tree2");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/variant"), "tdx dev, rebuilt\n").unwrap();
    let cpio = root.path().join("changed.cpio");
    crate::support::pack_cpio(&tree, &cpio);
    let link = build.join(
        "tmp-tdx-glibc/deploy/images/secret-vm-tdx/secret-vm-rootfs-dev-secret-vm-tdx.rootfs.cpio",
    );
    let target = link.parent().unwrap().join(fs::read_link(&link).unwrap());
    fs::copy(&cpio, &target).unwrap();
    // and its SBOM with it, as a rebuild of the image would.
    let deploy = link.parent().unwrap();
    let sbom = deploy.join("secret-vm-rootfs-dev-secret-vm-tdx.rootfs.spdx.json");
    let sbom_target = deploy.join(fs::read_link(&sbom).unwrap());
    fs::write(
        &sbom_target,
        crate::build::sbom_of(deploy, "secret-vm-rootfs-dev-secret-vm-tdx.rootfs"),
    )
    .unwrap();
    run_ok(&mut crate::build::build_cmd(&build, &b));

    let (code, out) = compare(&a, &b);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let digest = |dir: &Path| fs::read_to_string(dir.join("digest.txt")).unwrap().trim().to_owned();
    assert_eq!(lines[0], format!("digest.txt: {} -> {}", digest(&a), digest(&b)));
    assert!(
        lines[1].starts_with("3 files differ, 0 only in the first, 0 only in the second"),
        "{out}"
    );
    assert_eq!(lines[2], "tdx/rootfs-dev.cpio: 1 entries differ");
    assert_eq!(
        lines[3],
        format!(
            "  etc/variant: size 8 -> 17, sha256 {} -> {}",
            sha256(b"tdx dev\n"),
            sha256(b"tdx dev, rebuilt\n")
        )
    );
    assert_eq!(
        lines[4],
        "tdx/rootfs-dev.iso: made from tdx/rootfs-dev.cpio, which differs (see there)"
    );
    // The SBOM gives the image its new digest, which is the cpio's.
    let file_sha256 = |dir: &Path, path: &str| sha256(&fs::read(dir.join(path)).unwrap());
    assert_eq!(lines[5], "tdx/rootfs-dev.spdx.json: 1 values differ", "{out}");
    assert_eq!(
        lines[6],
        format!(
            "  @graph[3].verifiedUsing[0].hashValue: {:?} -> {:?}",
            file_sha256(&a, "tdx/rootfs-dev.cpio"),
            file_sha256(&b, "tdx/rootfs-dev.cpio")
        )
    );
    // manifest.json: the digest, and the digests of the three files (their sizes where the
    // files' sizes differ on disk), nothing else.
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(b.join("manifest.json")).unwrap()).unwrap();
    let index = |path: &str| {
        let files = manifest["files"].as_array().unwrap();
        files.iter().position(|f| f["path"] == path).unwrap()
    };
    let mut want = vec!["digest".to_owned()];
    for path in ["tdx/rootfs-dev.cpio", "tdx/rootfs-dev.iso", "tdx/rootfs-dev.spdx.json"] {
        let i = index(path);
        want.push(format!("files[{i}].sha256"));
        let len = |dir: &Path| fs::metadata(dir.join(path)).unwrap().len();
        if len(&a) != len(&b) {
            want.push(format!("files[{i}].size"));
        }
    }
    want.sort();
    assert_eq!(lines[7], format!("manifest.json: {} values differ", want.len()), "{out}");
    let mut changed: Vec<String> =
        lines[8..].iter().map(|l| l.trim().split(':').next().unwrap().to_owned()).collect();
    changed.sort();
    assert_eq!(changed, want, "{out}");
}
