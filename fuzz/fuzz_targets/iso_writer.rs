//! Fuzzes the ISO writer: arbitrary cpio archives in; `secretvm_pack::iso::check_iso` checks
//! the structure of every image it accepts, then the real `isoinfo` (from genisoimage; path in
//! `$SECRETVM_ISOINFO`, else `isoinfo` on `PATH`) must read the image without a complaint and
//! list exactly the archive's entries.

#![no_main]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// Images isoinfo has read so far; reported now and then, so a run shows the real reader was
/// exercised and not only the parser's rejections.
static CHECKED: AtomicU64 = AtomicU64::new(0);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(checked) = secretvm_pack::iso::check_iso(data) {
        isoinfo_lists(&checked);
    }
});

/// Runs `isoinfo -R -l` on the image and compares the number of entries it lists with the
/// archive's (names are compared only when they are plain enough to find in its text output).
fn isoinfo_lists(checked: &secretvm_pack::iso::CheckedIso) {
    let path = std::env::temp_dir().join(format!("secretvm-fuzz-{}.iso", std::process::id()));
    std::fs::write(&path, &checked.image).expect("cannot write the image to the temp dir");
    let tool = std::env::var_os("SECRETVM_ISOINFO")
        .map_or_else(|| PathBuf::from("isoinfo"), PathBuf::from);
    #[allow(clippy::disallowed_methods)]
    let out = Command::new(&tool)
        .args(["-R", "-l", "-i"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (install genisoimage): {e}", tool.display()));
    let _ = std::fs::remove_file(&path);
    let count = CHECKED.fetch_add(1, Ordering::Relaxed) + 1;
    if count.is_power_of_two() || count % 10_000 == 0 {
        eprintln!("iso_writer: isoinfo has read {count} images");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "isoinfo failed: {stderr}");
    // Entry lines start with a ten-character mode; `.` and `..` are not entries.
    let listed: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.len() > 10
                && l.as_bytes()[0] != b' '
                && l.as_bytes()[1..10].iter().all(|b| b"-rwxsStT".contains(b))
        })
        // isoinfo ends each name with a space, and shows a symlink as `name -> target`.
        .filter_map(|l| {
            let (_, name) = l.split_once("]  ")?;
            let name = name.strip_suffix(' ').unwrap_or(name);
            Some(if l.starts_with('l') {
                name.split_once(" -> ").map_or(name, |(n, _)| n)
            } else {
                name
            })
        })
        .filter(|name| *name != "." && *name != "..")
        .collect();
    let expected = checked.paths.iter().filter(|p| p.as_str() != ".").count();
    let plain = checked
        .paths
        .iter()
        .all(|p| p.bytes().all(|b| b.is_ascii_graphic() && b != b'/' || b == b'/'));
    if plain {
        assert_eq!(
            listed.len(),
            expected,
            "isoinfo lists {} entries, the cpio has {expected}:\n{stdout}",
            listed.len()
        );
        for p in checked.paths.iter().filter(|p| p.as_str() != ".") {
            let name = p.rsplit('/').next().unwrap_or(p);
            assert!(listed.contains(&name), "isoinfo does not list {p:?}:\n{stdout}");
        }
    }
}
