//! The shared measurement vectors (`$SECRETVM_VECTORS/measure/cases.json`): every case is run
//! and compared with the value the reference tool or the hardware produced.
//!
//! The test fails when a computed value differs from the vector, when a case of a kind this
//! test does not know appears, or (under `CI=true`) when the vectors are missing. Each case's
//! verdict is printed on stderr (`--nocapture`).

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::ovmf::{Ovmf, OvmfInfo};
use crate::snp::{self, KernelHashes, SnpParams, Vcpu};
use crate::tdx::{self, AcpiDigests, Event, KernelLoad, MrtdOrder, Rtmr0Layout};
use crate::{
    Error, FileRef, LaunchBytes, LaunchDescription, Measurement, QemuProfile, Sha256Digest,
    Sha384Digest, TdxFirmware, Tee, measure,
};

/// `Ok` when every expected value of the case matched, else what differed.
type CaseResult = std::result::Result<(), String>;

fn read(dir: &Path, rel: &Value) -> std::result::Result<Vec<u8>, String> {
    let rel = rel.as_str().ok_or("input path is not a string")?;
    fs::read(dir.join(rel)).map_err(|e| format!("cannot read {rel}: {e}"))
}

fn str_of<'a>(v: &'a Value, key: &str) -> std::result::Result<&'a str, String> {
    v[key].as_str().ok_or_else(|| format!("{key} is missing or not a string"))
}

/// A [`FileRef`] for a vector input path.
fn file_ref(path: &Value) -> FileRef {
    FileRef { path: path.as_str().unwrap_or_default().to_owned(), sha256: None }
}

fn check_eq(what: &str, actual: &str, expected: &str) -> std::result::Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{what}: computed {actual}, expected {expected}"))
    }
}

/// Parses `"0x21"`, `"1"` or `1`.
fn int_param(v: &Value) -> std::result::Result<u64, String> {
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(|| format!("{n} is not a u64")),
        Value::String(s) => match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).map_err(|e| format!("{s}: {e}")),
            None => s.parse().map_err(|e| format!("{s}: {e}")),
        },
        other => Err(format!("{other} is not an integer")),
    }
}

fn snp_params(params: &Value) -> std::result::Result<SnpParams, String> {
    let vcpu = if let Some(t) = params["vcpu_type"].as_str() {
        Vcpu::Type(t.to_owned())
    } else if let Some(fms) = params["vcpu_family_model_stepping"].as_array() {
        let n = |i: usize| fms.get(i).map_or(Err("short family/model/stepping".into()), int_param);
        Vcpu::FamilyModelStepping {
            family: n(0)? as u32,
            model: n(1)? as u32,
            stepping: n(2)? as u32,
        }
    } else {
        return Err("no vcpu_type or vcpu_family_model_stepping".into());
    };
    Ok(SnpParams {
        vcpus: int_param(&params["vcpus"])? as u32,
        vcpu,
        guest_features: int_param(&params["guest_features"])?,
    })
}

fn run_ovmf_info(dir: &Path, case: &Value) -> CaseResult {
    let bytes = read(dir, &case["inputs"]["ovmf"])?;
    let info = Ovmf::parse(&bytes).and_then(|o| o.info()).map_err(|e| format!("{e}"))?;
    let actual = serde_json::to_value(&info).map_err(|e| e.to_string())?;
    if actual != case["expected"] {
        return Err(format!("ovmf-info: computed {actual}, expected {}", case["expected"]));
    }
    Ok(())
}

fn run_snp_ovmf_hash(dir: &Path, case: &Value) -> CaseResult {
    let bytes = read(dir, &case["inputs"]["ovmf"])?;
    let hash = Ovmf::parse(&bytes).and_then(|o| o.snp_ovmf_hash()).map_err(|e| format!("{e}"))?;
    check_eq("ovmf_hash", &hash.to_string(), str_of(&case["expected"], "ovmf_hash")?)?;
    Ok(())
}

fn run_snp(dir: &Path, case: &Value) -> CaseResult {
    let inputs = &case["inputs"];
    let params = &case["params"];
    let expected = &case["expected"];
    let firmware = read(dir, &inputs["ovmf"])?;
    let kernel = inputs.get("kernel").map(|k| read(dir, k)).transpose()?;
    let initrd = inputs.get("initrd").map(|k| read(dir, k)).transpose()?;
    let append = params["append"].as_str();
    let seed = params["snp_ovmf_hash"]
        .as_str()
        .map(|h| Sha384Digest::from_hex("snp_ovmf_hash", h))
        .transpose()
        .map_err(|e| e.to_string())?;
    let hashes = kernel.as_deref().map(|k| KernelHashes::new(k, initrd.as_deref(), append));
    let snp_params = snp_params(params)?;
    let result = Ovmf::parse(&firmware)
        .and_then(|ovmf| snp::launch_digest(&ovmf, seed, &snp_params, hashes.as_ref()));
    if expected["error"] == Value::Bool(true) {
        let want = "Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES";
        return match result {
            Err(Error::NoKernelHashesSection) => {
                let stderr = str_of(expected, "stderr")?;
                if !stderr.contains(want) {
                    return Err(format!("the vector's error changed: {stderr}"));
                }
                Ok(())
            }
            Err(other) => {
                Err(format!("expected the missing SNP_KERNEL_HASHES error, got: {other}"))
            }
            Ok(m) => Err(format!("expected an error, computed {}", m.measurement)),
        };
    }
    let m = result.map_err(|e| format!("{e}"))?;
    check_eq("measurement", &m.measurement.to_string(), str_of(expected, "measurement")?)?;
    // The same launch through the launch description.
    let desc = LaunchDescription {
        tee: Tee::SevSnp,
        vcpus: snp_params.vcpus,
        vcpu: Some(snp_params.vcpu.clone()),
        guest_features: snp_params.guest_features,
        memory_bytes: 2 << 30,
        firmware: file_ref(&inputs["ovmf"]),
        kernel: inputs.get("kernel").map(file_ref),
        initrd: inputs.get("initrd").map(file_ref),
        cmdline: append.unwrap_or_default().to_owned(),
        qemu: QemuProfile { version: [9, 2], acpi_data_size: 0x28000 },
        tdx: None,
    };
    let bytes =
        LaunchBytes { firmware: &firmware, kernel: kernel.as_deref(), initrd: initrd.as_deref() };
    match measure(&desc, &bytes).map_err(|e| e.to_string())? {
        Measurement::SevSnp(m) => {
            check_eq("measure()", &m.measurement.to_string(), str_of(expected, "measurement")?)?
        }
        Measurement::Tdx(_) => return Err("measure() returned TDX for SEV-SNP".into()),
    }
    if let Some(h) = &hashes {
        check_eq("kernel_sha256", &h.kernel.to_string(), str_of(expected, "kernel_sha256")?)?;
        check_eq("initrd_sha256", &h.initrd.to_string(), str_of(expected, "initrd_sha256")?)?;
        check_eq("cmdline_sha256", &h.cmdline.to_string(), str_of(expected, "cmdline_sha256")?)?;
    }
    Ok(())
}

fn run_snp_from_hashes(dir: &Path, case: &Value) -> CaseResult {
    let doc: Value = serde_json::from_slice(&read(dir, &case["inputs"]["document"])?)
        .map_err(|e| e.to_string())?;
    let info: OvmfInfo = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
    let digest =
        |key| Sha256Digest::from_hex("hash", str_of(&doc, key)?).map_err(|e| e.to_string());
    let hashes = KernelHashes {
        kernel: digest("kernel_hash")?,
        initrd: digest("initrd_hash")?,
        cmdline: snp::cmdline_sha256(str_of(&doc, "base_cmdline")?),
    };
    let m = snp::launch_digest_from_info(&info, &snp_params(&case["params"])?, Some(&hashes))
        .map_err(|e| format!("{e}"))?;
    check_eq("measurement", &m.measurement.to_string(), str_of(&case["expected"], "measurement")?)?;
    Ok(())
}

fn run_secretvm_fingerprints(dir: &Path, case: &Value) -> CaseResult {
    let expected = &case["expected"];
    let json = &expected["sev_image_fingerprints.json"];
    // The OVMF part must be what we extract from the firmware.
    let firmware = read(dir, &case["inputs"]["ovmf"])?;
    let info = Ovmf::parse(&firmware).and_then(|o| o.info()).map_err(|e| format!("{e}"))?;
    let from_json: OvmfInfo = serde_json::from_value(json.clone()).map_err(|e| e.to_string())?;
    if info != from_json {
        return Err(format!("ovmf info: computed {info:?}, the fingerprints hold {from_json:?}"));
    }
    let kernel = read(dir, &case["inputs"]["kernel"])?;
    let initrd = read(dir, &case["inputs"]["initrd"])?;
    let computed = KernelHashes::new(&kernel, Some(&initrd), None);
    check_eq("kernel_hash", &computed.kernel.to_string(), str_of(json, "kernel_hash")?)?;
    check_eq("initrd_hash", &computed.initrd.to_string(), str_of(json, "initrd_hash")?)?;
    // A verifier holding only the JSON and the cmdline reproduces the measurement.
    let fingerprints: crate::SevImageFingerprints =
        serde_json::from_value(json.clone()).map_err(|e| e.to_string())?;
    let m = fingerprints.measurement(str_of(expected, "cmdline")?).map_err(|e| format!("{e}"))?;
    check_eq(
        "measurement_for_cmdline",
        &m.measurement.to_string(),
        str_of(expected, "measurement_for_cmdline")?,
    )?;
    Ok(())
}

/// Compares computed events with an expected digest list, then their fold with `rtmr`.
fn check_log(
    name: &str,
    events: &[Event],
    log: &Value,
    rtmr: &Value,
) -> std::result::Result<(), String> {
    let log = log.as_array().ok_or_else(|| format!("{name}_log is missing"))?;
    if log.len() != events.len() {
        return Err(format!("{name}: computed {} events, expected {}", events.len(), log.len()));
    }
    for (i, (e, want)) in events.iter().zip(log).enumerate() {
        let want = want.as_str().ok_or("log entry is not a string")?;
        check_eq(&format!("{name} event {i} ({})", e.description), &e.digest.to_string(), want)?;
    }
    let regs = tdx::replay(events).map_err(|e| e.to_string())?;
    let reg = usize::from(events.first().map_or(0, |e| e.rtmr));
    check_eq(name, &regs[reg].to_string(), rtmr.as_str().ok_or("rtmr is missing")?)
}

fn run_tdx(dir: &Path, case: &Value) -> CaseResult {
    let inputs = &case["inputs"];
    let params = &case["params"];
    let expected = &case["expected"];
    let firmware = read(dir, &inputs["firmware"])?;
    let ovmf = Ovmf::parse(&firmware).map_err(|e| e.to_string())?;
    for (order, key) in
        [(MrtdOrder::SinglePass, "mrtd_single_pass"), (MrtdOrder::TwoPass, "mrtd_two_pass")]
    {
        if let Some(want) = expected[key].as_str() {
            let got = tdx::mrtd(&ovmf, order).map_err(|e| e.to_string())?;
            check_eq(key, &got.to_string(), want)?;
        }
    }
    let memory = int_param(&params["memory_bytes"])?;
    if expected.get("rtmr0").is_some() {
        let acpi = &params["acpi_event_digests"];
        let d = |k| Sha384Digest::from_hex("acpi", str_of(acpi, k)?).map_err(|e| e.to_string());
        let acpi = AcpiDigests { loader: d("loader")?, rsdp: d("rsdp")?, tables: d("tables")? };
        let events = tdx::rtmr0_events(&ovmf, Rtmr0Layout::Pre202505, memory, &acpi)
            .map_err(|e| e.to_string())?;
        check_log("rtmr0", &events, &expected["rtmr0_log"], &expected["rtmr0"])?;
    }
    let Some(kernel) = inputs.get("kernel") else { return Ok(()) };
    let kernel = read(dir, kernel)?;
    let initrd = inputs.get("initrd").map(|i| read(dir, i)).transpose()?;
    let measured = str_of(params, "measured_cmdline")?;
    let append = match initrd {
        Some(_) => measured.strip_suffix(" initrd=initrd").ok_or("no initrd=initrd suffix")?,
        None => measured,
    };
    check_eq("measured cmdline", &tdx::measured_cmdline(append, initrd.is_some()), measured)?;
    let acpi_data_size = int_param(&params["acpi_data_size"])? as u32;
    let initrd_len = initrd.as_ref().map(|i| i.len() as u64);
    let rtmr1 = |load| {
        tdx::rtmr1_events(&kernel, initrd_len, append, memory, load).map_err(|e| e.to_string())
    };
    let unpatched = rtmr1(KernelLoad::Unpatched)?;
    check_eq(
        "kernel_authenticode_unpatched",
        &unpatched[0].digest.to_string(),
        str_of(expected, "kernel_authenticode_unpatched")?,
    )?;
    let patched = rtmr1(KernelLoad::Patched { acpi_data_size })?;
    if let Some(want) = expected["qemu_faithful_kernel_authenticode"].as_str() {
        // The divergence vector: QEMU's logic, not dstack-mr's.
        check_eq("qemu_faithful_kernel_authenticode", &patched[0].digest.to_string(), want)?;
        let regs = tdx::replay(&patched).map_err(|e| e.to_string())?;
        check_eq(
            "qemu_faithful_rtmr1",
            &regs[1].to_string(),
            str_of(expected, "qemu_faithful_rtmr1")?,
        )?;
        return Ok(());
    }
    check_log("rtmr1", &patched, &expected["rtmr1_log"], &expected["rtmr1"])?;
    let regs = tdx::replay(&unpatched).map_err(|e| e.to_string())?;
    check_eq(
        "rtmr1_if_qemu_ge_10_2",
        &regs[1].to_string(),
        str_of(expected, "rtmr1_if_qemu_ge_10_2")?,
    )?;
    let events = tdx::rtmr2_events(measured, initrd.as_deref());
    check_log("rtmr2", &events, &expected["rtmr2_log"], &expected["rtmr2"])?;
    // The same launch through the launch description, as QEMU 8.2 (two-pass, patched header).
    let acpi = &params["acpi_event_digests"];
    let d = |k| Sha384Digest::from_hex("acpi", str_of(acpi, k)?).map_err(|e| e.to_string());
    let desc = LaunchDescription {
        tee: Tee::Tdx,
        vcpus: int_param(&params["vcpus"])? as u32,
        vcpu: None,
        guest_features: 0,
        memory_bytes: memory,
        firmware: file_ref(&inputs["firmware"]),
        kernel: inputs.get("kernel").map(file_ref),
        initrd: inputs.get("initrd").map(file_ref),
        cmdline: append.to_owned(),
        qemu: QemuProfile { version: [8, 2], acpi_data_size },
        tdx: Some(TdxFirmware {
            rtmr0_layout: Rtmr0Layout::Pre202505,
            acpi: Some(AcpiDigests {
                loader: d("loader")?,
                rsdp: d("rsdp")?,
                tables: d("tables")?,
            }),
        }),
    };
    let bytes =
        LaunchBytes { firmware: &firmware, kernel: Some(&kernel), initrd: initrd.as_deref() };
    let Measurement::Tdx(m) = measure(&desc, &bytes).map_err(|e| e.to_string())? else {
        return Err("measure() returned SEV-SNP for TDX".into());
    };
    let show = |d: Option<Sha384Digest>| d.map(|d| d.to_string()).unwrap_or_default();
    check_eq("measure() mrtd", &m.mrtd.to_string(), str_of(expected, "mrtd_two_pass")?)?;
    check_eq("measure() rtmr0", &show(m.rtmr0), str_of(expected, "rtmr0")?)?;
    check_eq("measure() rtmr1", &show(m.rtmr1), str_of(expected, "rtmr1")?)?;
    check_eq("measure() rtmr2", &show(m.rtmr2), str_of(expected, "rtmr2")?)?;
    Ok(())
}

fn run_tdx_replay(dir: &Path, case: &Value) -> CaseResult {
    let doc: Value = serde_json::from_slice(&read(dir, &case["inputs"]["getquote"])?)
        .map_err(|e| e.to_string())?;
    let expected = &case["expected"];
    let quote = hex::decode(str_of(&doc, "quote")?).map_err(|e| e.to_string())?;
    let q = tdx::quote_measurements(&quote).map_err(|e| e.to_string())?;
    check_eq("quote mrtd", &q.mrtd.to_string(), str_of(expected, "mrtd")?)?;
    let log: Vec<tdx::CcEventLogEntry> =
        serde_json::from_str(str_of(&doc, "event_log")?).map_err(|e| e.to_string())?;
    let events = tdx::events_from_log(&log).map_err(|e| e.to_string())?;
    let cmp = tdx::compare_with_quote(&events, &q).map_err(|e| e.to_string())?;
    for i in 0..4 {
        let key = format!("rtmr{i}");
        check_eq(&format!("quote {key}"), &q.rtmrs[i].to_string(), str_of(expected, &key)?)?;
        check_eq(
            &format!("replayed {key}"),
            &cmp.replayed[i].to_string(),
            str_of(expected, &key)?,
        )?;
    }
    // The recomputable single events of the log.
    check_eq(
        "cfv_event_digest",
        &events[1].digest.to_string(),
        str_of(expected, "cfv_event_digest")?,
    )?;
    let initrd_event = events.iter().filter(|e| e.rtmr == 2).nth(1).ok_or("no initrd event")?;
    check_eq(
        "initrd_sha384",
        &initrd_event.digest.to_string(),
        str_of(expected, "initrd_sha384")?,
    )?;
    Ok(())
}

fn run_rtmr3_native(case: &Value) -> CaseResult {
    let values = case["params"]["extend_values_sha256_hex"].as_array().ok_or("no values")?;
    let mut events = Vec::new();
    for v in values {
        let v = Sha256Digest::from_hex("value", v.as_str().ok_or("not a string")?)
            .map_err(|e| e.to_string())?;
        events.push(tdx::secretvm_native_event("value", &v));
    }
    let regs = tdx::replay(&events).map_err(|e| e.to_string())?;
    check_eq("rtmr3", &regs[3].to_string(), str_of(&case["expected"], "rtmr3")?)?;
    Ok(())
}

fn run_rtmr3_dstack(case: &Value) -> CaseResult {
    let mut events = Vec::new();
    for e in case["params"]["events"].as_array().ok_or("no events")? {
        let payload = hex::decode(str_of(e, "payload_hex")?).map_err(|e| e.to_string())?;
        events.push(tdx::dstack_event(str_of(e, "name")?, &payload));
    }
    let want = case["expected"]["event_digests"].as_array().ok_or("no event_digests")?;
    for (i, (e, w)) in events.iter().zip(want).enumerate() {
        check_eq(&format!("event {i}"), &e.digest.to_string(), w.as_str().unwrap_or_default())?;
    }
    if want.len() != events.len() {
        return Err("event count differs".into());
    }
    let regs = tdx::replay(&events).map_err(|e| e.to_string())?;
    check_eq("rtmr3", &regs[3].to_string(), str_of(&case["expected"], "rtmr3")?)?;
    Ok(())
}

fn run_case(dir: &Path, case: &Value) -> CaseResult {
    match case["kind"].as_str().unwrap_or_default() {
        "ovmf-info" => run_ovmf_info(dir, case),
        "snp-ovmf-hash" => run_snp_ovmf_hash(dir, case),
        "snp" => run_snp(dir, case),
        "snp-from-hashes" => run_snp_from_hashes(dir, case),
        "secretvm-fingerprints" => run_secretvm_fingerprints(dir, case),
        "tdx" => run_tdx(dir, case),
        "tdx-replay" => run_tdx_replay(dir, case),
        "rtmr3-secretvm-native" => run_rtmr3_native(case),
        "rtmr3-dstack-events" => run_rtmr3_dstack(case),
        other => Err(format!("unknown case kind {other:?}: teach this test about it")),
    }
}

#[test]
#[allow(clippy::print_stderr, reason = "the per-case report is the point of this test")]
fn measurement_vectors() {
    let Some(vectors) = secretvm_testkit::vectors() else { return };
    let dir = vectors.join("measure");
    let Some(json) = secretvm_testkit::vector("measure/cases.json") else { return };
    let cases: Vec<Value> = serde_json::from_slice(&json).expect("cases.json is JSON");
    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap_or("<no id>");
        match run_case(&dir, case) {
            Ok(()) => eprintln!("pass {id}"),
            Err(why) => {
                eprintln!("FAIL {id}: {why}");
                failures.push(format!("{id}: {why}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "measurement vectors with a wrong value or an unknown kind:\n{}",
        failures.join("\n")
    );
}

/// A 4 KiB image whose footer table holds `entries` (each `data`, GUID), laid out as OVMF's
/// reset vector does: entries, then the footer entry, then 32 bytes of reset vector.
fn image_with_entries(entries: &[(&[u8], [u8; 16])]) -> Vec<u8> {
    let mut table = Vec::new();
    for (data, g) in entries {
        table.extend_from_slice(data);
        table.extend_from_slice(&((data.len() + 18) as u16).to_le_bytes());
        table.extend_from_slice(g);
    }
    let footer = crate::bytes::guid(
        0x96b5_82de,
        0x1fb2,
        0x45f7,
        [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d],
    );
    table.extend_from_slice(&((table.len() + 18) as u16).to_le_bytes());
    table.extend_from_slice(&footer);
    let mut image = vec![0u8; 4096 - 32 - table.len()];
    image.extend_from_slice(&table);
    image.extend_from_slice(&[0; 32]);
    image
}

const SEV_METADATA: [u8; 16] = crate::bytes::guid(
    0xdc88_6566,
    0x984a,
    0x4798,
    [0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc],
);

#[test]
fn firmware_without_a_footer_has_no_metadata() {
    let image = vec![0u8; 4096];
    let ovmf = Ovmf::parse(&image).unwrap();
    assert!(ovmf.sev_sections().is_empty() && ovmf.tdvf_sections().is_empty());
    let err = ovmf.info().unwrap_err();
    assert!(matches!(err, Error::MissingEntry { what: "SEV-ES reset block" }), "{err}");
}

#[test]
fn firmware_size_must_be_whole_pages_below_4_gib() {
    for len in [0, 1, 4095, 4097] {
        let err = Ovmf::parse(&vec![0u8; len]).unwrap_err();
        assert!(matches!(err, Error::FirmwareSize { len: l } if l == len as u64), "{err}");
    }
}

#[test]
fn footer_entry_shorter_than_its_header_is_rejected_with_its_offset() {
    let mut image = image_with_entries(&[(b"abcd", SEV_METADATA)]);
    // The entry's length field sits 18 + 18 + 32 bytes before the end.
    let at = 4096 - 32 - 18 - 18;
    image[at..at + 2].copy_from_slice(&3u16.to_le_bytes());
    let err = Ovmf::parse(&image).unwrap_err();
    assert!(
        matches!(err, Error::BadField { what: "OVMF footer entry length", offset, actual: 3, .. } if offset == at as u64),
        "{err}"
    );
}

#[test]
fn sev_metadata_offset_outside_the_image_is_rejected() {
    let image = image_with_entries(&[(&0x2000u32.to_le_bytes(), SEV_METADATA)]);
    let err = Ovmf::parse(&image).unwrap_err();
    assert!(
        matches!(err, Error::BadField { what: "SEV metadata offset", actual: 0x2000, .. }),
        "{err}"
    );
    // Pointing at bytes that are not "ASEV".
    let image = image_with_entries(&[(&0x100u32.to_le_bytes(), SEV_METADATA)]);
    let err = Ovmf::parse(&image).unwrap_err();
    assert!(
        matches!(err, Error::BadMagic { what: "SEV metadata signature", offset: 0xf00, .. }),
        "{err}"
    );
}

#[test]
fn sev_metadata_item_count_past_the_end_is_truncated_not_allocated() {
    // "ASEV" 0x200 bytes before the end, in the zeros before the table, claiming u32::MAX items.
    let mut image = image_with_entries(&[(&0x200u32.to_le_bytes(), SEV_METADATA)]);
    let base = 4096 - 0x200;
    let header =
        [b"ASEV".as_slice(), &16u32.to_le_bytes(), &1u32.to_le_bytes(), &u32::MAX.to_le_bytes()]
            .concat();
    image[base..base + 16].copy_from_slice(&header);
    let err = Ovmf::parse(&image).unwrap_err();
    assert!(
        matches!(err, Error::Truncated { what: "SEV metadata items", offset, .. } if offset == base as u64 + 16),
        "{err}"
    );
}

#[test]
fn mutated_firmware_never_panics() {
    let Some(image) = secretvm_testkit::vector("measure/inputs/firmware/ovmf_AmdSev_suffix.bin")
    else {
        return;
    };
    crate::fuzz::check_ovmf(&image);
    for at in image.len() - 400..image.len() {
        for byte in [0x00, 0x7f, 0xff] {
            let mut m = image.clone();
            m[at] = byte;
            crate::fuzz::check_ovmf(&m);
        }
    }
}

#[test]
fn truncated_and_mutated_kernels_never_panic() {
    let Some(kernel) = secretvm_testkit::vector("measure/inputs/kernel/memtest86+x64.efi") else {
        return;
    };
    assert!(crate::pe::authenticode_sha384(&kernel).is_ok());
    for len in [
        0,
        1,
        0x3c,
        0x40,
        0x80,
        0x1f1,
        0x237,
        0x238,
        0x400,
        0x1000,
        kernel.len() / 2,
        kernel.len() - 1,
    ] {
        crate::fuzz::check_pe(&kernel[..len]);
        if len < 0x1000 {
            assert!(crate::pe::authenticode_sha384(&kernel[..len]).is_err(), "{len} bytes");
        }
    }
    for at in (0..0x400).step_by(3) {
        let mut m = kernel[..0x2000].to_vec();
        m[at] = 0xff;
        crate::fuzz::check_pe(&m);
    }
}

#[test]
fn normal_pages_up_to_the_top_of_the_address_space() {
    use crate::snp::Gctx;
    let top_page = u64::MAX - 4095; // the last 4 KiB page a 64-bit GPA can start
    // One page there fits; the same page folded by hand gives the same digest.
    let page = [0x5au8; 4096];
    let mut g = Gctx::default();
    g.update_normal_pages(top_page, &page).unwrap();
    let mut by_hand = Gctx::default();
    let contents: [u8; 48] = <sha2::Sha384 as sha2::Digest>::digest(page).into();
    by_hand.update(snp::PageType::Normal, top_page, &contents);
    assert_eq!(g.finish(), by_hand.finish());
    // A second page would start past 2^64: refused, naming the GPA.
    let err = Gctx::default().update_normal_pages(top_page, &[0u8; 8192]).unwrap_err();
    assert!(matches!(err, Error::Overflow { what: "page GPA" }), "{err:?}");
}
