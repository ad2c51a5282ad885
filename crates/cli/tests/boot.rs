//! End to end with the real Linux kernel: boot an initramfs built by `secretvm pack initramfs`
//! (busybox plus our init script) under QEMU with software emulation, with a qcow2 disk made by
//! `secretvm qcow2 create` attached as virtio-blk. The guest checks what the kernel unpacked,
//! writes to the disk, reads it back and powers off; the host then checks the guest's report,
//! runs `qemu-img check` and reads the guest's writes out of the image with `qemu-img dd`.
//!
//! This is the template later end-to-end tests (the ISO root file system, measured boot) extend:
//! [`Guest`] builds the initramfs from a description plus extra lines and runs it.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{run_ok, secretvm, tool_from_env, tool_on_path};

/// How long a boot may take under TCG before the test gives up (a boot takes ~5 s here).
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// Modules that give the guest a virtio block device, in load order; each is loaded only if the
/// kernel has it as a module (it may be built in).
pub(crate) const MODULES: &[&str] = &[
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_blk",
];

const EPOCH: u32 = 1_700_000_000;
const DISK_SIZE: u64 = 300 << 30;

/// What a boot test needs from the host.
pub(crate) struct Guest {
    qemu: PathBuf,
    kernel: PathBuf,
    modules: PathBuf,
    busybox: PathBuf,
}

impl Guest {
    /// Debian's cloud kernel and its modules.
    pub(crate) fn from_env() -> Option<Guest> {
        Guest::with_kernel("SECRETVM_KERNEL", "SECRETVM_KERNEL_MODULES")
    }

    /// Like [`Guest::from_env`], with Debian's generic kernel, which has 9p (`-virtfs`).
    pub(crate) fn generic_from_env() -> Option<Guest> {
        Guest::with_kernel("SECRETVM_GENERIC_KERNEL", "SECRETVM_GENERIC_KERNEL_MODULES")
    }

    /// Like [`Guest::from_env`], with a kernel that has the measurement-register sysfs (Linux
    /// 6.16 or later) and, as its only module, the kernel's `tsm_mr_sample`, which gives it
    /// registers without TDX hardware (`cargo xtask deps` builds both, as root).
    pub(crate) fn tsm_from_env() -> Option<Guest> {
        Guest::with_kernel("SECRETVM_TSM_KERNEL", "SECRETVM_TSM_MODULES")
    }

    /// The emulator and busybox, with the kernel and modules directory the two variables name.
    fn with_kernel(kernel: &str, modules: &str) -> Option<Guest> {
        Some(Guest {
            qemu: tool_from_env("SECRETVM_QEMU")?,
            kernel: tool_from_env(kernel)?,
            modules: tool_from_env(modules)?,
            busybox: tool_from_env("SECRETVM_BUSYBOX")?,
        })
    }

    /// The gen_init_cpio description of a minimal busybox system with the virtio modules, plus
    /// `extra` lines; `/init` comes from `init`.
    pub(crate) fn spec(&self, dir: &Path, init: &str, extra: &str) -> PathBuf {
        fs::write(dir.join("init.sh"), init).unwrap();
        let mut spec = String::from(
            "dir /bin 0755 0 0\ndir /dev 0755 0 0\ndir /proc 0755 0 0\ndir /sys 0755 0 0\n\
             dir /mnt 0755 0 0\ndir /lib 0755 0 0\ndir /lib/modules 0755 0 0\n\
             nod /dev/console 0600 0 0 c 5 1\nslink /bin/sh busybox 0777 0 0\n\
             file /init init.sh 0755 0 0\n",
        );
        writeln!(spec, "file /bin/busybox {} 0755 0 0", self.busybox.display()).unwrap();
        for module in MODULES {
            if let Some(path) = find_module(&self.modules, module) {
                writeln!(spec, "file /lib/modules/{module}.ko {} 0644 0 0", path.display())
                    .unwrap();
            }
        }
        spec.push_str(extra);
        let path = dir.join("initramfs.list");
        fs::write(&path, spec).unwrap();
        path
    }

    /// `names` and every module they depend on, dependencies first, each once. The dependencies
    /// come from the `depends=` string of each module's `.modinfo` section, which is what
    /// `modinfo -F depends` prints.
    pub(crate) fn modules_with_deps(&self, names: &[&str]) -> Vec<(String, PathBuf)> {
        fn visit(guest: &Guest, name: &str, out: &mut Vec<(String, PathBuf)>) {
            if out.iter().any(|(n, _)| n == name) {
                return;
            }
            let path = find_module(&guest.modules, name)
                .unwrap_or_else(|| panic!("the kernel has no module {name}"));
            let bytes = fs::read(&path).unwrap();
            let key = b"\0depends=";
            let deps = bytes
                .windows(key.len())
                .position(|w| w == key)
                .map(|at| {
                    let rest = &bytes[at + key.len()..];
                    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                    String::from_utf8_lossy(&rest[..end]).into_owned()
                })
                .unwrap_or_default();
            for dep in deps.split(',').filter(|d| !d.is_empty()) {
                visit(guest, dep, out);
            }
            out.push((name.to_owned(), path));
        }
        let mut out = Vec::new();
        for name in names {
            visit(self, name, &mut out);
        }
        out
    }

    /// Boots `initrd` with the qcow2 image `disk` as a virtio disk and returns the console output.
    fn boot(&self, initrd: &Path, disk: &Path) -> String {
        self.boot_with_drive(initrd, &format!("file={},if=virtio,format=qcow2", disk.display()))
    }

    /// The kernel modules directory, to add more modules to a [`Guest::spec`].
    pub(crate) fn modules(&self) -> &Path {
        &self.modules
    }

    /// Boots `initrd` with one disk described by the QEMU `-drive` option `drive`, and returns
    /// the console output.
    pub(crate) fn boot_with_drive(&self, initrd: &Path, drive: &str) -> String {
        self.boot_with(initrd, &["-drive", drive], "console=ttyS0 panic=-1 quiet")
    }

    /// Boots `initrd` with the extra QEMU arguments `args` and the kernel command line `append`,
    /// waits for the guest to power off and returns the console output.
    pub(crate) fn boot_with(&self, initrd: &Path, args: &[&str], append: &str) -> String {
        let log = initrd.with_extension("console.log");
        let mut child = Command::new(&self.qemu)
            .args(["-machine", "q35,accel=tcg", "-cpu", "max", "-m", "512", "-smp", "1"])
            .args(["-nographic", "-no-reboot", "-nic", "none", "-kernel"])
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(["-append", append])
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start the emulator");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > BOOT_TIMEOUT {
                child.kill().ok();
                child.wait().ok();
                panic!(
                    "the guest did not power off within {BOOT_TIMEOUT:?}; console:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let console = String::from_utf8_lossy(&fs::read(&log).unwrap()).replace('\r', "");
        assert!(status.success(), "the emulator exited with {status}; console:\n{console}");
        eprintln!("guest booted and powered off in {:.1} s", started.elapsed().as_secs_f64());
        console
    }
}

/// Finds `<name>.ko` below a kernel's modules directory.
pub(crate) fn find_module(dir: &Path, name: &str) -> Option<PathBuf> {
    let wanted = format!("{name}.ko");
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_module(&path, name) {
                return Some(found);
            }
        } else if entry.file_name().to_str() == Some(wanted.as_str()) {
            return Some(path);
        }
    }
    None
}

/// The lines between `BEGIN name` and `END name` in the console output.
/// (busybox `stat` quotes a name with `%N` only for symbolic links.)
pub(crate) fn section<'a>(console: &'a str, name: &str) -> Vec<&'a str> {
    let begin = format!("BEGIN {name}");
    let end = format!("END {name}");
    console
        .lines()
        // The firmware's terminal escapes can share a line with the first marker.
        .skip_while(|l| !l.trim_end().ends_with(&begin))
        .skip(1)
        .take_while(|l| l.trim_end() != end)
        .collect()
}

/// The guest's program: load the drivers, report what the kernel unpacked, then write two
/// records to the disk (at the start and 1 MiB before its end), read them back and report.
const INIT: &str = r#"#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
  [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko
done
echo BEGIN unpacked
cd /t && for f in *; do stat -c '%A %h %u %g %s %t:%T %Y %N' "$f"; done; cd /
cat /t/hl-a
echo END unpacked
i=0; while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
sectors=$(cat /sys/block/vda/size)
echo "disk-bytes $((sectors * 512))"
last=$((sectors - 2048))
printf 'secretvm-e2e-first-record' | dd of=/dev/vda bs=512 seek=0 conv=fsync 2>/dev/null
printf 'secretvm-e2e-last-record' | dd of=/dev/vda bs=512 seek=$last conv=fsync 2>/dev/null
echo 3 > /proc/sys/vm/drop_caches
first=$(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 25)
lastrec=$(dd if=/dev/vda bs=512 skip=$last count=1 2>/dev/null | head -c 24)
echo "read-back $first $lastrec"
sync
echo SECRETVM-E2E-DONE
poweroff -f
"#;

/// Entries whose kernel-unpacked view the guest reports, with special modes, owners, hard links
/// (data on the last name only, as newc says) and every non-file type.
const EXTRA: &str = "\
dir /t 0755 0 0
file /t/hl-a payload 4750 0 1000 /t/hl-b
slink /t/link hl-a 0777 0 0
nod /t/null 0666 0 0 c 1 3
nod /t/vdz 0640 0 6 b 254 7
pipe /t/fifo 0600 0 0
sock /t/sock 0640 7 8
dir /t/private 0700 1000 1000
";

#[test]
fn linux_boots_our_initramfs_and_uses_our_qcow2_disk() {
    let Some(guest) = Guest::from_env() else { return };
    let Some(_) = tool_on_path("qemu-img") else { return };
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("payload"), "hard-linked payload\n").unwrap();
    let spec = guest.spec(dir.path(), INIT, EXTRA);
    let initrd = dir.path().join("initramfs.cpio.gz");
    run_ok(
        secretvm()
            .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
            .args(["pack", "initramfs", "--spec"])
            .arg(&spec)
            .arg("-o")
            .arg(&initrd),
    );
    let disk = dir.path().join("encryptedfs.qcow2");
    run_ok(secretvm().args(["qcow2", "create"]).arg(&disk).arg("300G"));

    let console = guest.boot(&initrd, &disk);
    assert!(!console.contains("Initramfs unpacking failed"), "console:\n{console}");
    assert!(console.contains("SECRETVM-E2E-DONE"), "the init did not finish; console:\n{console}");

    // What the kernel made of our archive, as busybox `stat` shows it; expected from EXTRA.
    let e = EPOCH;
    let expected = [
        format!("prw------- 1 0 0 0 0:0 {e} fifo"),
        format!("-rwsr-x--- 2 0 1000 20 0:0 {e} hl-a"),
        format!("-rwsr-x--- 2 0 1000 20 0:0 {e} hl-b"),
        format!("lrwxrwxrwx 1 0 0 4 0:0 {e} 'link' -> 'hl-a'"),
        format!("crw-rw-rw- 1 0 0 0 1:3 {e} null"),
        format!("drwx------ 2 1000 1000 0 0:0 {e} private"),
        format!("srw-r----- 1 7 8 0 0:0 {e} sock"),
        format!("brw-r----- 1 0 6 0 fe:7 {e} vdz"),
        "hard-linked payload".to_string(),
    ];
    let unpacked = section(&console, "unpacked");
    let unpacked: Vec<String> = unpacked.iter().map(|l| normalize_dir_size(l)).collect();
    assert_eq!(unpacked, expected, "console:\n{console}");

    assert!(console.contains(&format!("disk-bytes {DISK_SIZE}")), "console:\n{console}");
    assert!(
        console.contains("read-back secretvm-e2e-first-record secretvm-e2e-last-record"),
        "console:\n{console}"
    );

    // The host's view of the image after the guest wrote to it.
    run_ok(Command::new("qemu-img").arg("check").arg(&disk));
    let last_offset = DISK_SIZE - 2048 * 512;
    for (skip, want) in
        [(0, "secretvm-e2e-first-record"), (last_offset / 512, "secretvm-e2e-last-record")]
    {
        let raw = dir.path().join("sector.raw");
        let _ = fs::remove_file(&raw);
        run_ok(
            Command::new("qemu-img")
                .args(["dd", "-f", "qcow2", "-O", "raw", "bs=512"])
                // qemu-img dd counts the skipped blocks in `count`: this copies one block.
                .arg(format!("count={}", skip + 1))
                .arg(format!("skip={skip}"))
                .arg(format!("if={}", disk.display()))
                .arg(format!("of={}", raw.display())),
        );
        let sector = fs::read(&raw).unwrap();
        assert!(sector.starts_with(want.as_bytes()), "sector {skip} holds {:?}", sector.get(..32));
    }
}

/// A directory's size depends on the guest's file system (tmpfs reports 40, ramfs 0): show 0.
fn normalize_dir_size(line: &str) -> String {
    if !line.starts_with('d') {
        return line.to_string();
    }
    let mut words: Vec<&str> = line.split(' ').collect();
    if words.len() > 4 {
        words[4] = "0";
    }
    words.join(" ")
}
