//! `secretvm measure` against the shared measurement vectors, whose expected values come from
//! sev-snp-measure 0.0.13, extract_ovmf_info.py, dstack-mr, rtmr_ext.sh and a real TD quote
//! (see `vectors/measure/CASES.md`).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use std::process::Command;

use crate::support::{run_err, run_ok, secretvm, tool_from_env, vectors};

/// The measurement vectors directory and its parsed `cases.json`.
fn cases() -> Option<(PathBuf, Vec<Value>)> {
    let dir = vectors()?.join("measure");
    let json = fs::read(dir.join("cases.json")).expect("cases.json is readable");
    Some((dir, serde_json::from_slice(&json).expect("cases.json is JSON")))
}

fn case<'a>(cases: &'a [Value], id: &str) -> &'a Value {
    cases.iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no case {id}"))
}

fn input(dir: &Path, case: &Value, key: &str) -> PathBuf {
    dir.join(case["inputs"][key].as_str().unwrap_or_else(|| panic!("no input {key}")))
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

#[test]
fn ovmf_info_prints_what_extract_ovmf_info_prints() {
    let Some((dir, cases)) = cases() else { return };
    for id in ["ovmf-info-amdsev", "ovmf-info-trixie", "ovmf-info-inteltdx-ms"] {
        let c = case(&cases, id);
        let out = run_ok(secretvm().args(["measure", "ovmf-info"]).arg(input(&dir, c, "ovmf")));
        let printed: Value = serde_json::from_str(&stdout(&out)).expect("JSON output");
        assert_eq!(printed, c["expected"], "{id}");
    }
}

#[test]
fn snp_prints_the_sev_snp_measure_digest() {
    let Some((dir, cases)) = cases() else { return };
    let c = case(&cases, "snp-secretvm-epyc-1vcpu");
    let p = &c["params"];
    let out = run_ok(
        secretvm()
            .args(["measure", "snp", "--vcpus", "1", "--vcpu-type", "EPYC", "--guest-features"])
            .arg(p["guest_features"].as_str().unwrap())
            .arg("--ovmf")
            .arg(input(&dir, c, "ovmf"))
            .arg("--kernel")
            .arg(input(&dir, c, "kernel"))
            .arg("--initrd")
            .arg(input(&dir, c, "initrd"))
            .arg("--append")
            .arg(p["append"].as_str().unwrap()),
    );
    assert_eq!(stdout(&out).trim(), c["expected"]["measurement"].as_str().unwrap());
}

#[test]
fn snp_from_secretvm_fingerprints_needs_no_files() {
    let Some((_, cases)) = cases() else { return };
    let c = case(&cases, "secretvm-sev-image-fingerprints");
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("sev_image_fingerprints.json");
    fs::write(&json, c["expected"]["sev_image_fingerprints.json"].to_string()).unwrap();
    let out = run_ok(
        secretvm()
            .args(["measure", "snp", "--fingerprints"])
            .arg(&json)
            .arg("--append")
            .arg(c["expected"]["cmdline"].as_str().unwrap()),
    );
    assert_eq!(stdout(&out).trim(), c["expected"]["measurement_for_cmdline"].as_str().unwrap());
}

#[test]
fn snp_with_a_kernel_and_no_kernel_hashes_section_fails_clearly() {
    let Some((dir, cases)) = cases() else { return };
    let c = case(&cases, "snp-error-ovmfx64-with-kernel");
    let stderr = run_err(
        secretvm()
            .args(["measure", "snp", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf"])
            .arg(input(&dir, c, "ovmf"))
            .arg("--kernel")
            .arg(input(&dir, c, "kernel")),
    );
    assert!(stderr.contains("doesn't include an SNP_KERNEL_HASHES section"), "{stderr}");
}

#[test]
fn tdx_prints_mrtd_and_rtmrs() {
    let Some((dir, cases)) = cases() else { return };
    let c = case(&cases, "tdx-full-secretvm-vmlinuz-2g");
    let p = &c["params"];
    let acpi = &p["acpi_event_digests"];
    let append = p["measured_cmdline"].as_str().unwrap().strip_suffix(" initrd=initrd").unwrap();
    let out = run_ok(
        secretvm()
            .args(["measure", "tdx", "--memory", "2G", "--qemu-version", "8.2.2", "--ovmf"])
            .arg(input(&dir, c, "firmware"))
            .arg("--kernel")
            .arg(input(&dir, c, "kernel"))
            .arg("--initrd")
            .arg(input(&dir, c, "initrd"))
            .args(["--append", append])
            .args(["--acpi-loader", acpi["loader"].as_str().unwrap()])
            .args(["--acpi-rsdp", acpi["rsdp"].as_str().unwrap()])
            .args(["--acpi-tables", acpi["tables"].as_str().unwrap()]),
    );
    let e = &c["expected"];
    let want = format!(
        "mrtd: {}\nrtmr0: {}\nrtmr1: {}\nrtmr2: {}\n",
        e["mrtd_two_pass"].as_str().unwrap(),
        e["rtmr0"].as_str().unwrap(),
        e["rtmr1"].as_str().unwrap(),
        e["rtmr2"].as_str().unwrap()
    );
    assert_eq!(stdout(&out), want);
}

#[test]
fn replay_of_a_real_quote_matches_it() {
    let Some((dir, cases)) = cases() else { return };
    let c = case(&cases, "tdx-dstack-real-quote-replay");
    let out = run_ok(
        secretvm().args(["measure", "replay", "--getquote"]).arg(input(&dir, c, "getquote")),
    );
    let text = stdout(&out);
    for i in 0..4 {
        let want = c["expected"][format!("rtmr{i}")].as_str().unwrap();
        assert!(text.contains(&format!("rtmr{i}: {want} matches the quote")), "{text}");
    }
}

#[test]
fn rtmr3_native_and_dstack_modes() {
    let Some((_, cases)) = cases() else { return };
    let c = case(&cases, "rtmr3-secretvm-native-compose-rootfs");
    let mut cmd = secretvm();
    cmd.args(["measure", "rtmr3"]);
    for v in c["params"]["extend_values_sha256_hex"].as_array().unwrap() {
        cmd.args(["--value", v.as_str().unwrap()]);
    }
    assert_eq!(stdout(&run_ok(&mut cmd)).trim(), c["expected"]["rtmr3"].as_str().unwrap());

    let c = case(&cases, "rtmr3-secretvm-dstack-mode");
    let mut cmd = secretvm();
    cmd.args(["measure", "rtmr3"]);
    for e in c["params"]["events"].as_array().unwrap() {
        cmd.arg("--event").arg(format!(
            "{}={}",
            e["name"].as_str().unwrap(),
            e["payload_hex"].as_str().unwrap()
        ));
    }
    assert_eq!(stdout(&run_ok(&mut cmd)).trim(), c["expected"]["rtmr3"].as_str().unwrap());
}

/// SHA-256 of a file as the real `sha256sum` prints it.
fn sha256sum(path: &Path) -> String {
    let Some(tool) = crate::support::tool_on_path("sha256sum") else {
        panic!("sha256sum (coreutils) is missing");
    };
    #[allow(clippy::disallowed_methods)]
    let out = Command::new(tool).arg(path).output().expect("sha256sum runs");
    assert!(out.status.success());
    stdout(&out).split_whitespace().next().expect("a digest").to_owned()
}

#[test]
fn rtmr3_from_a_config_dir_extends_what_the_init_extends() {
    // The values come from the real sha256sum; the fold of values and of dstack events is
    // checked against rtmr_ext.sh and dstack by `rtmr3_native_and_dstack_modes`.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    fs::create_dir(&config).unwrap();
    let compose = config.join("docker-compose.yaml");
    fs::write(&compose, "services:\n  app:\n    image: busybox\n").unwrap();
    let iso = dir.path().join("rootfs.iso");
    fs::write(&iso, vec![0x42u8; 70_000]).unwrap();
    let tar = config.join("docker-files.tar");
    let rtmr3 = |extra: &[&str]| -> String {
        let mut cmd = secretvm();
        cmd.args(["measure", "rtmr3", "--config-dir"]).arg(&config).args(extra);
        stdout(&run_ok(&mut cmd)).trim().to_owned()
    };
    let by_values = |values: &[String]| -> String {
        let mut cmd = secretvm();
        cmd.args(["measure", "rtmr3"]);
        for v in values {
            cmd.args(["--value", v]);
        }
        stdout(&run_ok(&mut cmd)).trim().to_owned()
    };
    let iso_arg = ["--rootfs", iso.to_str().unwrap()];

    // Native mode (KMS "contract"): compose, rootfs, then docker-files.tar when present.
    fs::write(config.join("secret-vm.json"), r#"{"KMS": "contract"}"#).unwrap();
    let want = by_values(&[sha256sum(&compose), sha256sum(&iso)]);
    assert_eq!(rtmr3(&iso_arg), want);
    let rootfs_hash = sha256sum(&iso);
    assert_eq!(rtmr3(&["--rootfs-hash", &rootfs_hash]), want);
    fs::write(&tar, b"not really a tar, hashed as bytes").unwrap();
    assert_eq!(
        rtmr3(&iso_arg),
        by_values(&[sha256sum(&compose), sha256sum(&iso), sha256sum(&tar)])
    );

    // dstack mode: app-id, compose-hash, os-image-hash, docker-files-hash events.
    let app_id = "86b0e55f2fa8e4fb69d890f14f54d5612707646e";
    fs::write(
        config.join("secret-vm.json"),
        format!(r#"{{"KMS": "dstack", "dstack_app_id": "{app_id}"}}"#),
    )
    .unwrap();
    let mut cmd = secretvm();
    cmd.args(["measure", "rtmr3"]);
    for (name, payload) in [
        ("app-id", app_id.to_owned()),
        ("compose-hash", sha256sum(&compose)),
        ("os-image-hash", sha256sum(&iso)),
        ("docker-files-hash", sha256sum(&tar)),
    ] {
        cmd.arg("--event").arg(format!("{name}={payload}"));
    }
    assert_eq!(rtmr3(&iso_arg), stdout(&run_ok(&mut cmd)).trim());

    // Clear errors: no app id in dstack mode, no rootfs, no compose file.
    fs::write(config.join("secret-vm.json"), r#"{"KMS": "gramine"}"#).unwrap();
    let err =
        run_err(secretvm().args(["measure", "rtmr3", "--config-dir"]).arg(&config).args(iso_arg));
    assert!(err.contains("dstack_app_id"), "{err}");
    let err = run_err(secretvm().args(["measure", "rtmr3", "--config-dir"]).arg(&config));
    assert!(err.contains("--rootfs"), "{err}");
    fs::remove_file(&compose).unwrap();
    fs::write(config.join("secret-vm.json"), r#"{"KMS": "contract"}"#).unwrap();
    let err =
        run_err(secretvm().args(["measure", "rtmr3", "--config-dir"]).arg(&config).args(iso_arg));
    assert!(err.contains("docker-compose.yaml"), "{err}");
}

/// SHA-384 of a file as the real `sha384sum` prints it.
fn sha384sum(path: &Path) -> String {
    let Some(tool) = crate::support::tool_on_path("sha384sum") else {
        panic!("sha384sum (coreutils) is missing");
    };
    #[allow(clippy::disallowed_methods)]
    let out = Command::new(tool).arg(path).output().expect("sha384sum runs");
    assert!(out.status.success());
    stdout(&out).split_whitespace().next().expect("a digest").to_owned()
}

#[test]
fn rtmr0_from_raw_acpi_blobs_equals_rtmr0_from_their_digests() {
    let Some((dir, cases)) = cases() else { return };
    let ovmf = input(&dir, case(&cases, "ovmf-info-inteltdx-ms"), "ovmf");
    let tmp = tempfile::tempdir().unwrap();
    // Blob shapes as QEMU serves them: a 4 KiB loader, the 20-byte RSDP, a table blob.
    let blobs = [("loader", 4096usize, 0x11u8), ("rsdp", 20, 0x22), ("tables", 131_072, 0x33)];
    let mut by_file = secretvm();
    by_file.args(["measure", "tdx", "--memory", "2G", "--ovmf"]).arg(&ovmf);
    let mut by_digest = secretvm();
    by_digest.args(["measure", "tdx", "--memory", "2G", "--ovmf"]).arg(&ovmf);
    for (name, len, fill) in blobs {
        let path = tmp.path().join(name);
        fs::write(&path, vec![fill; len]).unwrap();
        by_file.arg(format!("--acpi-{name}-file")).arg(&path);
        by_digest.arg(format!("--acpi-{name}")).arg(sha384sum(&path));
    }
    let from_files = stdout(&run_ok(&mut by_file));
    assert!(from_files.contains("rtmr0: "), "{from_files}");
    assert_eq!(from_files, stdout(&run_ok(&mut by_digest)));
}

/// splitmix64: a small deterministic generator, so a failing parameter set can be replayed from
/// the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The vCPU flags of one random launch, in sev-snp-measure's (and our) spelling.
fn random_vcpu(rng: &mut Rng) -> Vec<String> {
    // The names both tools know (sev-snp-measure 0.0.13 CPU_SIGS).
    const TYPES: &[&str] = &[
        "EPYC",
        "EPYC-v1",
        "EPYC-v2",
        "EPYC-IBPB",
        "EPYC-v3",
        "EPYC-v4",
        "EPYC-Rome",
        "EPYC-Rome-v1",
        "EPYC-Rome-v2",
        "EPYC-Rome-v3",
        "EPYC-Milan",
        "EPYC-Milan-v1",
        "EPYC-Milan-v2",
        "EPYC-Genoa",
        "EPYC-Genoa-v1",
        "EPYC-Turin",
    ];
    match rng.below(4) {
        0 => vec!["--vcpu-sig".into(), format!("{:#x}", 1 + rng.below(0x0fff_ffff))],
        1 => vec![
            "--vcpu-family".into(),
            (1 + rng.below(0x10e)).to_string(),
            "--vcpu-model".into(),
            rng.below(256).to_string(),
            "--vcpu-stepping".into(),
            rng.below(16).to_string(),
        ],
        _ => vec!["--vcpu-type".into(), TYPES[rng.below(TYPES.len() as u64) as usize].into()],
    }
}

#[test]
fn sev_snp_seves_and_sev_agree_with_sev_snp_measure_on_random_launches() {
    let Some(reference) = tool_from_env("SECRETVM_SEV_SNP_MEASURE") else { return };
    let Some((dir, _)) = cases() else { return };
    let seed = std::env::var("SECRETVM_DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut rng = Rng(seed);
    // (firmware, whether it can measure a kernel): two AmdSev builds and two OvmfPkgX64 builds.
    let firmware = [
        ("inputs/firmware/OVMF.amdsev.fd", true),
        ("inputs/firmware/ovmf_AmdSev_suffix.bin", true),
        ("inputs/firmware/OVMF.trixie.fd", false),
        ("inputs/firmware/ovmf_OvmfX64_suffix.bin", false),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let (kernel, initrd) = (tmp.path().join("kernel"), tmp.path().join("initrd"));
    let mut failures = Vec::new();
    for i in 0..200 {
        let (fw, kernel_capable) = firmware[rng.below(firmware.len() as u64) as usize];
        let mode = ["snp", "snp", "snp", "seves", "sev"][rng.below(5) as usize];
        let mut args: Vec<String> =
            vec!["--mode".into(), mode.into(), "--vcpus".into(), (1 + rng.below(16)).to_string()];
        args.extend(random_vcpu(&mut rng));
        let features = match rng.below(3) {
            0 => 0x1,
            1 => 0x21,
            _ => rng.next() & 0xffff | 1,
        };
        args.extend(["--guest-features".into(), format!("{features:#x}")]);
        args.extend(["--ovmf".into(), dir.join(fw).display().to_string()]);
        if kernel_capable && rng.below(4) != 0 {
            let n = rng.below(200_000) as usize;
            fs::write(&kernel, rng.bytes(n)).unwrap();
            args.extend(["--kernel".into(), kernel.display().to_string()]);
            if rng.below(2) == 0 {
                let n = rng.below(100_000) as usize;
                fs::write(&initrd, rng.bytes(n)).unwrap();
                args.extend(["--initrd".into(), initrd.display().to_string()]);
            }
            if rng.below(3) != 0 {
                // Printable ASCII and some UTF-8, never NUL (argv cannot carry it).
                let len = rng.below(300) as usize;
                let append: String = (0..len)
                    .map(|_| match rng.below(20) {
                        0 => 'é',
                        1 => '→',
                        _ => char::from(b' ' + rng.below(95) as u8),
                    })
                    .collect();
                // One argument, so that a leading '-' is not read as a flag by either parser.
                args.push(format!("--append={append}"));
            }
        }
        let ours = secretvm().args(["measure", "snp"]).args(&args).output().unwrap();
        let theirs = Command::new(&reference).args(&args).output().unwrap();
        let (ours_out, theirs_out) = (stdout(&ours), stdout(&theirs));
        if !ours.status.success()
            || !theirs.status.success()
            || ours_out.trim() != theirs_out.trim()
        {
            failures.push(format!(
                "launch {i} (seed {seed}): {args:?}\n  ours:   {} {}\n  theirs: {} {}",
                ours_out.trim(),
                String::from_utf8_lossy(&ours.stderr).trim(),
                theirs_out.trim(),
                String::from_utf8_lossy(&theirs.stderr).trim()
            ));
        }
    }
    assert!(failures.is_empty(), "secretvm and sev-snp-measure differ:\n{}", failures.join("\n"));
}
