//! The layer's `secretvm-guest` against the Linux kernel's own measurement-register code
//! (tsm-mr, Linux 6.16 and later), under QEMU.
//!
//! There is no TD under TCG, so the registers come from the kernel's sample module
//! `samples/tsm-mr`, which registers them through the same tsm-mr code as the TDX guest driver:
//! its `rtmr1:sha384` is extended by the kernel as TDX extends an RTMR (SHA-384 of the old value
//! followed by the 48 bytes written), and tsm-mr refuses any write that is not 48 bytes at
//! offset 0. The test extends it three times with the zero-padded sha256 of three files, as the
//! gcp-tdx init does with RTMR3, then once with a full 48-byte value, and recomputes each value
//! here with `sha2` from the register's first value: the kernel does the hashing, the program
//! only writes. The registers are read back with busybox `od` as well as with the program.

use std::fmt::Write as _;
use std::fs;

use sha2::{Digest, Sha256, Sha384};

use crate::boot::Guest;
use crate::guest_init::secretvm_guest_binary;
use crate::support::run_ok;
use crate::support::secretvm;

const REGISTERS: &str = "/sys/devices/virtual/misc/tsm_mr_sample/measurements";

/// The guest's init: load the sample, extend, read back, power off.
fn init(full: &str) -> String {
    format!(
        r#"#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
insmod /lib/modules/tsm_mr_sample.ko || echo INSMOD-FAILED
D={REGISTERS}
raw() {{ od -An -v -tx1 "$D/rtmr1:sha384" | tr -d ' \n'; echo; }}
echo "BEFORE $(raw)"
for f in docker-compose.yaml rootfs.iso docker-files.tar; do
  h=$(sha256sum "/data/$f" | cut -d' ' -f1)
  secretvm-guest extend-rtmr 1 "$h" --measurements "$D" || echo EXTEND-FAILED
  echo "RAW $(raw)"
done
secretvm-guest extend-rtmr 1 {full} --measurements "$D" || echo EXTEND-FAILED
echo "RAW $(raw)"
echo BEGIN show
secretvm-guest show-mrs --measurements "$D"
echo END show
if printf abc > "$D/rtmr1:sha384"; then echo PARTIAL-ACCEPTED; else echo PARTIAL-REFUSED; fi
echo "LAST $(raw)"
secretvm-guest extend-rtmr 3 "$h"
echo "DEFAULT-EXIT $?"
poweroff -f
"#
    )
}

/// The values after `prefix` on the console, in order (the firmware's terminal escapes may
/// come first on the line).
fn values<'a>(console: &'a str, prefix: &str) -> Vec<&'a str> {
    console.lines().filter_map(|l| l.split_once(prefix)).map(|(_, value)| value.trim()).collect()
}

#[test]
fn secretvm_guest_extends_a_register_of_the_kernels_own_tsm_mr_sysfs() {
    let Some(guest) = Guest::tsm_from_env() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    fs::create_dir_all(&data).unwrap();
    // Three files of different sizes and contents, as the init would hash.
    let files: Vec<(&str, Vec<u8>)> =
        [("docker-compose.yaml", 1000), ("rootfs.iso", 300_000), ("docker-files.tar", 5)]
            .iter()
            .map(|&(name, len)| {
                (name, (0..len).map(|i: usize| (i * 31 + name.len()) as u8).collect())
            })
            .collect();
    let mut extra = String::from("dir /data 0755 0 0\n");
    for (name, bytes) in &files {
        fs::write(data.join(name), bytes).unwrap();
        writeln!(extra, "file /data/{name} {} 0644 0 0", data.join(name).display()).unwrap();
    }
    let module = crate::boot::find_module(guest.modules(), "tsm_mr_sample").expect("the module");
    writeln!(extra, "file /lib/modules/tsm_mr_sample.ko {} 0644 0 0", module.display()).unwrap();
    writeln!(extra, "file /bin/secretvm-guest {} 0755 0 0", secretvm_guest_binary().display())
        .unwrap();
    let full: [u8; 48] = std::array::from_fn(|i| (0xc0 ^ i) as u8);
    let spec = guest.spec(dir, &init(&hex::encode(full)), &extra);
    let initrd = dir.join("initramfs.cpio.gz");
    run_ok(secretvm().args(["pack", "initramfs", "--spec"]).arg(&spec).arg("-o").arg(&initrd));
    let console = guest.boot_with(&initrd, &[], "console=ttyS0 panic=-1 quiet");

    assert!(!console.contains("INSMOD-FAILED"), "{console}");
    assert!(!console.contains("EXTEND-FAILED"), "{console}");
    let [before] = values(&console, "BEFORE ")[..] else { panic!("{console}") };
    let mut expected = hex::decode(before).unwrap();
    assert_eq!(expected.len(), 48, "{console}");
    let mut chain = Vec::new();
    for (_, bytes) in &files {
        let mut padded = Sha256::digest(bytes).to_vec();
        padded.resize(48, 0);
        expected = Sha384::new().chain_update(&expected).chain_update(&padded).finalize().to_vec();
        chain.push(hex::encode(&expected));
    }
    expected = Sha384::new().chain_update(&expected).chain_update(full).finalize().to_vec();
    chain.push(hex::encode(&expected));
    assert_eq!(values(&console, "RAW "), chain, "{console}");
    // The program's own reading agrees with od's.
    let show = crate::boot::section(&console, "show");
    assert!(
        show.contains(&format!("rtmr1:sha384 {}", hex::encode(&expected)).as_str()),
        "{console}"
    );
    // The kernel takes nothing but whole 48-byte writes: the register is unchanged.
    assert!(console.contains("PARTIAL-REFUSED"), "{console}");
    assert_eq!(values(&console, "LAST "), [hex::encode(&expected)], "{console}");
    // Without a TD the default register directory is missing: the program says so and fails.
    assert!(
        console.contains(
            "secretvm-guest: error: /sys/devices/virtual/misc/tdx_guest/measurements/rtmr3:sha384 \
             does not exist"
        ),
        "{console}"
    );
    assert_eq!(values(&console, "DEFAULT-EXIT "), ["1"], "{console}");
}
