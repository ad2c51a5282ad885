//! `cargo xtask fuzz`: runs every cargo-fuzz target in `fuzz/` for a bounded time.
//!
//! The targets need a nightly toolchain (libFuzzer instrumentation) and `cargo-fuzz`; both are
//! installed if missing and possible (`cargo install cargo-fuzz`; the nightly toolchain must
//! already be known to rustup, since only crates.io is reachable). A crash fails the run and
//! leaves its input under `fuzz/artifacts/<target>/`: copy it to the owning crate's
//! `test_data/.../fuzz-failures/` as `fuzz_<name>`, where an ordinary test replays it.
//! `fuzz/seeds/<target>/` holds committed starting inputs (small archives made by GNU cpio, gpg's
//! own output); [`REPO_SEEDS`] names files elsewhere in the repository that start a target too.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Repository files (config, captured bitbake logs, an SBOM) that a target also starts from:
/// copied into its corpus before each run, so they are not committed twice.
const REPO_SEEDS: &[(&str, &[&str])] = &[(
    "yocto_parse",
    &[
        "yocto/secretvm.toml",
        "crates/yocto/tests/fixtures/image-sbom.spdx.json",
        "crates/yocto/tests/fixtures/knotty-no-provider.log",
        "crates/yocto/tests/fixtures/knotty-ovmf.log",
        "crates/yocto/tests/fixtures/knotty-runall-fetch.log",
        "crates/yocto/tests/fixtures/knotty-sanity-offline.log",
        "crates/yocto/tests/fixtures/knotty-sstate-signatures.log",
    ],
)];

/// Flags of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Only these targets (default: every `[[bin]]` of fuzz/Cargo.toml).
    targets: Vec<String>,
}

pub(crate) fn run(root: &Path, args: &Args) -> Result<()> {
    let fuzz_dir = root.join("fuzz");
    let manifest =
        fs::read_to_string(fuzz_dir.join("Cargo.toml")).context("cannot read fuzz/Cargo.toml")?;
    let all = targets(&manifest);
    let chosen: Vec<String> =
        if args.targets.is_empty() { all.clone() } else { args.targets.clone() };
    if let Some(unknown) = chosen.iter().find(|t| !all.contains(t)) {
        bail!("no fuzz target {unknown:?}; the targets are: {}", all.join(", "));
    }
    let toolchains = cmd::output(cmd::new("rustup", root).args(["toolchain", "list"]))
        .context("cargo xtask fuzz needs rustup")?;
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        bail!(
            "fuzzing needs a nightly toolchain and rustup knows none; install one with \
             `rustup toolchain install nightly` where its server is reachable"
        );
    }
    let has_cargo_fuzz = cmd::output(cmd::new("cargo", root).args(["fuzz", "--version"])).is_ok();
    if !has_cargo_fuzz {
        cmd::run(cmd::new("cargo", root).args(["install", "--locked", "cargo-fuzz"]))
            .context("cannot install cargo-fuzz from crates.io")?;
    }
    for target in &chosen {
        let corpus = fuzz_dir.join("corpus").join(target);
        fs::create_dir_all(&corpus)?;
        for (_, files) in REPO_SEEDS.iter().filter(|(t, _)| t == target) {
            for file in *files {
                let name = file.replace('/', "_");
                fs::copy(root.join(file), corpus.join(&name)).with_context(|| {
                    format!("cannot copy the seed {file} into {}", corpus.display())
                })?;
            }
        }
        // Committed seeds (small valid inputs made by the real tools) start the search where
        // inputs are accepted; libFuzzer reads them and writes new finds to `corpus` only.
        let seeds = fuzz_dir.join("seeds").join(target);
        let mut run = cmd::new("cargo", &fuzz_dir);
        run.args(["+nightly", "fuzz", "run", target]).arg(&corpus);
        if seeds.is_dir() {
            run.arg(&seeds);
        }
        cmd::run(
            run.arg("--")
                .arg(format!("-max_total_time={}", args.seconds))
                .arg("-rss_limit_mb=2048"),
        )
        .with_context(|| {
            format!("fuzz target {target} failed: its input is under fuzz/artifacts/{target}/")
        })?;
    }
    eprintln!(
        "cargo xtask fuzz: {} targets ran {} s each without a crash",
        chosen.len(),
        args.seconds
    );
    Ok(())
}

/// The `name` of every `[[bin]]` table of the fuzz manifest.
fn targets(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin
            && let Some(name) = line.strip_prefix("name = \"").and_then(|l| l.strip_suffix('"'))
        {
            names.push(name.to_string());
        }
    }
    names
}

#[test]
fn repository_seeds_name_real_targets_and_files() {
    let root = crate::project_root();
    let manifest = fs::read_to_string(root.join("fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
    let all = targets(&manifest);
    assert!(all.contains(&"yocto_parse".to_owned()), "{all:?}");
    for (target, files) in REPO_SEEDS {
        assert!(all.iter().any(|t| t == target), "{target} is not a target of {all:?}");
        for file in *files {
            assert!(root.join(file).is_file(), "the seed {file} of {target} is not a file");
        }
    }
}
