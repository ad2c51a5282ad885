//! `secretvm qcow2 create` and `info` against qemu-img, the reference implementation.

use std::fs;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::{run_err, run_ok, secretvm, tool_on_path, vectors};

#[test]
fn create_300g_matches_the_vector_and_passes_qemu_img_check() {
    let Some(vectors) = vectors() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("encryptedfs.qcow2");
    run_ok(secretvm().args(["qcow2", "create"]).arg(&ours).arg("300G"));
    let bytes = fs::read(&ours).unwrap();
    assert_eq!(bytes, fs::read(vectors.join("packing/empty-300G.qcow2")).unwrap());
    // The digest SOURCES.md records for `qemu-img create -f qcow2 … 300G` (qemu-img 10.0.2).
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        "2fb59df7bb30c852b5cc080d48a734ede0144d0f4bd1590e370831f4ae0de74e"
    );
    if tool_on_path("qemu-img").is_some() {
        run_ok(Command::new("qemu-img").arg("check").arg(&ours));
    }
}

#[test]
fn create_matches_the_installed_qemu_img_for_several_sizes() {
    if tool_on_path("qemu-img").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for size in ["0", "1M", "1.5G", "300G", "1T", "1000000000", "7T"] {
        let (ours, theirs) = (dir.path().join("ours.qcow2"), dir.path().join("theirs.qcow2"));
        run_ok(secretvm().args(["qcow2", "create"]).arg(&ours).arg(size));
        run_ok(
            Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&theirs).arg(size),
        );
        assert!(
            fs::read(&ours).unwrap() == fs::read(&theirs).unwrap(),
            "size {size}: bytes differ"
        );
        run_ok(Command::new("qemu-img").arg("check").arg(&ours));
    }
}

#[test]
fn info_agrees_with_qemu_img_info() {
    if tool_on_path("qemu-img").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.qcow2");
    run_ok(Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&image).arg("20G"));
    let theirs = run_ok(Command::new("qemu-img").args(["info", "--output=json"]).arg(&image));
    let theirs: serde_json::Value = serde_json::from_slice(&theirs.stdout).unwrap();
    let ours = run_ok(secretvm().args(["qcow2", "info", "--format", "json"]).arg(&image));
    let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
    assert_eq!(ours["virtual_size"], theirs["virtual-size"]);
    assert_eq!(ours["cluster_size"], theirs["cluster-size"]);
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let not_qcow2 = dir.path().join("plain.img");
    fs::write(&not_qcow2, vec![0u8; 4096]).unwrap();
    let err = run_err(secretvm().args(["qcow2", "info"]).arg(&not_qcow2));
    assert!(err.contains(&not_qcow2.display().to_string()), "{err}");
    let err =
        run_err(secretvm().args(["qcow2", "create"]).arg(dir.path().join("x.qcow2")).arg("12Q"));
    assert!(err.contains("invalid size \"12Q\""), "{err}");
    assert!(!dir.path().join("x.qcow2").exists());
}
