//! Tidy checks: the conventions `ARCHITECTURE.md` promises, enforced by `cargo test`.
//!
//! - every `.rs` file starts with a `//!` module doc;
//! - every crate under `crates/` is named `secretvm-*`, opts into the workspace lints and has a
//!   tier in [`TIERS`];
//! - the crate graph is one-way: a crate depends only on crates of a lower tier;
//! - library crates (leaf, edge and orchestration tiers) depend on neither clap nor anyhow, and
//!   their non-test code neither prints nor starts processes, except the Yocto runner modules
//!   in [`SPAWNING_MODULES`], which start processes;
//! - `unsafe` code (denied by the workspace lints) is allowed only in the modules listed in
//!   [`UNSAFE_MODULES`], and there every `unsafe` block states why it is sound;
//! - the test-support crate is only ever a dev-dependency;
//! - no test is marked to be skipped or to expect a panic.

use std::fs;
use std::path::{Path, PathBuf};

/// The tiers of the crate graph, lowest first (see `ARCHITECTURE.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    /// Pure format and measurement crates: bytes and values in, values out.
    Leaf,
    /// Crates that touch the file system.
    Edge,
    /// The build orchestrator: uses leaves and edges, and is the one library that starts
    /// processes (only in the modules listed in [`SPAWNING_MODULES`]).
    Orchestration,
    /// Thin binaries.
    Bin,
    /// Test support: allowed only as a dev-dependency, it may read vectors and print skips.
    Test,
}

/// Every workspace crate under `crates/` and its tier.
const TIERS: &[(&str, Tier)] = &[
    ("secretvm-pack", Tier::Leaf),
    ("secretvm-qcow2", Tier::Leaf),
    ("secretvm-measure", Tier::Leaf),
    ("secretvm-provenance", Tier::Leaf),
    ("secretvm-artifact", Tier::Edge),
    ("secretvm-yocto", Tier::Orchestration),
    ("secretvm-cli", Tier::Bin),
    ("secretvm-testkit", Tier::Test),
];

/// The only library source paths (relative to the workspace root) that may start processes:
/// the Yocto runner, which drives container engines, git and bitbake.
const SPAWNING_MODULES: &[&str] = &["crates/yocto/src/runner"];

/// The only source files that may allow `unsafe_code`, and why each needs it.
const UNSAFE_MODULES: &[(&str, &str)] = &[
    ("crates/measure/src/hasher/x86.rs", "SIMD loads and stores, calling #[target_feature] code"),
    ("crates/artifact/src/mapped.rs", "creating a read-only memory map of an input file"),
    (
        "meta-secret/recipes-core/secretvm-guest/files/secretvm-guest/src/sys.rs",
        "ioctl, memfd_create and fcntl for the in-guest dm-verity pin",
    ),
];

/// The in-guest program's source: not a workspace member, but its `unsafe` is held to the same
/// rule.
const GUEST_SOURCE: &str = "meta-secret/recipes-core/secretvm-guest/files/secretvm-guest/src";

/// Dependencies only binaries and xtask may have.
const BIN_ONLY_DEPENDENCIES: &[&str] = &["clap", "anyhow"];

fn root() -> PathBuf {
    crate::project_root()
}

fn tier_of(package: &str) -> Option<Tier> {
    TIERS.iter().find(|(name, _)| *name == package).map(|&(_, tier)| tier)
}

/// All `.rs` files below `dir`, skipping build output.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && name != "corpus" && name != "artifacts" {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "fuzz"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 5, "tidy found only {} .rs files: wrong root?", files.len());
    files
}

/// The code of a file that is not test code: files whose name ends in `tests.rs` or that sit
/// under a `tests/` directory are entirely test code; elsewhere, everything from the first
/// `#[cfg(test)]` on is.
fn non_test_code(path: &Path, text: &str) -> String {
    let is_test_file = path.file_name().is_some_and(|n| n.to_string_lossy().ends_with("tests.rs"))
        || path.components().any(|c| c.as_os_str() == "tests");
    if is_test_file {
        return String::new();
    }
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_string(),
        None => text.to_string(),
    }
}

struct Manifest {
    dir: PathBuf,
    text: String,
    name: String,
}

fn crate_manifests() -> Vec<Manifest> {
    let mut manifests = Vec::new();
    for entry in fs::read_dir(root().join("crates")).expect("read crates/").flatten() {
        let path = entry.path().join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&path) else { continue };
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{}: no package name", path.display()))
            .to_string();
        manifests.push(Manifest { dir: entry.path(), text, name });
    }
    assert!(manifests.len() >= 4, "tidy found only {} crates", manifests.len());
    manifests
}

/// The dependencies declared in a manifest, each with whether it is a dev-dependency.
fn dependencies(manifest: &str) -> Vec<(String, bool)> {
    let mut deps = Vec::new();
    let mut table: Option<bool> = None;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            table = match line {
                "[dependencies]" | "[build-dependencies]" => Some(false),
                "[dev-dependencies]" => Some(true),
                _ => None,
            };
            continue;
        }
        let Some(dev) = table else { continue };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split(['=', '.']).next().unwrap_or("").trim();
        if !key.is_empty() {
            deps.push((key.to_string(), dev));
        }
    }
    deps
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let offenders: Vec<String> = all_rust_files()
        .into_iter()
        .filter(|p| !fs::read_to_string(p).unwrap_or_default().starts_with("//!"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "these files do not start with a `//!` doc: {offenders:#?}");
}

#[test]
fn crates_are_named_tiered_and_linted() {
    for m in crate_manifests() {
        assert!(m.name.starts_with("secretvm-"), "{}: package must be named secretvm-*", m.name);
        assert!(
            tier_of(&m.name).is_some(),
            "{}: add it to TIERS in xtask/src/tidy.rs and to the code map in ARCHITECTURE.md",
            m.name
        );
        assert!(
            m.text.contains("[lints]\nworkspace = true"),
            "{}: opt into the workspace lints with `[lints] workspace = true`",
            m.name
        );
        let architecture = fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap_or_default();
        let dir = m.dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
        assert!(
            architecture.contains(&format!("`crates/{dir}`")),
            "ARCHITECTURE.md has no code-map entry for `crates/{dir}`"
        );
    }
}

fn dep_tier_is_test(package: &str) -> bool {
    tier_of(package) == Some(Tier::Test)
}

#[test]
fn crate_graph_is_one_way() {
    for m in crate_manifests() {
        let Some(tier) = tier_of(&m.name) else { continue };
        for (dep, dev) in dependencies(&m.text) {
            if dep_tier_is_test(&dep) {
                assert!(dev, "{} may use {dep} only as a dev-dependency", m.name);
                continue;
            }
            if let Some(dep_tier) = tier_of(&dep) {
                assert!(
                    dep_tier < tier,
                    "{} ({tier:?}) must not depend on {dep} ({dep_tier:?}): the graph only points \
                     to lower tiers",
                    m.name
                );
            }
            if tier < Tier::Bin && !dev {
                assert!(
                    !BIN_ONLY_DEPENDENCIES.contains(&dep.as_str()),
                    "library crate {} must not depend on {dep}: that belongs to binaries",
                    m.name
                );
            }
        }
    }
}

#[test]
fn library_crates_neither_print_nor_spawn() {
    let forbidden = ["println!", "eprintln!", "print!(", "eprint!(", "dbg!(", "process::Command"];
    for m in crate_manifests() {
        if tier_of(&m.name).is_none_or(|t| t >= Tier::Bin) {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&m.dir.join("src"), &mut files);
        for file in files {
            let text = fs::read_to_string(&file).unwrap_or_default();
            let code = non_test_code(&file, &text);
            let relative =
                file.strip_prefix(root()).unwrap_or(&file).to_string_lossy().into_owned();
            let may_spawn = SPAWNING_MODULES.iter().any(|m| relative.starts_with(m));
            for word in forbidden {
                if may_spawn && word == "process::Command" {
                    continue;
                }
                assert!(
                    !code.contains(word),
                    "{}: library code must not use `{word}` (printing and processes live in \
                     binaries and xtask)",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn unsafe_code_only_where_listed_and_justified() {
    let allow = concat!("allow(unsafe", "_code)");
    let mut seen = Vec::new();
    let mut files = all_rust_files();
    rust_files(&root().join(GUEST_SOURCE), &mut files);
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_default();
        let relative = file.strip_prefix(root()).unwrap_or(&file).to_string_lossy().into_owned();
        if !text.contains(allow) {
            continue;
        }
        assert!(
            UNSAFE_MODULES.iter().any(|(m, _)| *m == relative),
            "{relative}: `{allow}` is only allowed in the modules of UNSAFE_MODULES (xtask tidy)"
        );
        seen.push(relative.clone());
        // Every `unsafe {` block has a `// SAFETY:` comment in the comment lines right above
        // it (or on its own line); every `unsafe fn` has a `# Safety` section.
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let comment_above = lines[..i]
                .iter()
                .rev()
                .take_while(|l| l.trim_start().starts_with("//"))
                .any(|l| l.contains("SAFETY:"));
            if line.contains(concat!("unsafe", " {")) {
                assert!(
                    comment_above || line.contains("SAFETY:"),
                    "{relative}:{}: an `unsafe` block without a `// SAFETY:` comment",
                    i + 1
                );
            }
            if line.contains(concat!("unsafe", " fn ")) {
                let doc = &lines[i.saturating_sub(4)..i];
                assert!(
                    doc.iter().any(|l| l.contains("# Safety")),
                    "{relative}:{}: an `unsafe fn` without a `# Safety` section",
                    i + 1
                );
            }
        }
    }
    for (module, _) in UNSAFE_MODULES {
        assert!(seen.iter().any(|s| s == module), "UNSAFE_MODULES lists {module}, which is gone");
    }
}

#[test]
fn no_test_is_skipped_or_expects_a_panic() {
    let banned = [concat!("#[sh", "ould_panic"), concat!("#[ig", "nore")];
    for file in all_rust_files() {
        let text = fs::read_to_string(&file).unwrap_or_default();
        for word in banned {
            assert!(!text.contains(word), "{}: `{word}` is not allowed", file.display());
        }
    }
}
