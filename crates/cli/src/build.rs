//! `secretvm build`: the release from a bitbake build directory.
//!
//! With `--from-deploy BUILD_DIR` it runs the post-bitbake steps only (for CI and for users who
//! drive bitbake themselves): collect the selected machines' artifacts through the deploy links,
//! make the ISOs, GCP tarballs and the encrypted-fs disk, and write `sha256sum.txt`,
//! `digest.txt` and `manifest.json` (see `secretvm_yocto::collect`).
//!
//! The git revision is not computed here: `cargo xtask build` passes `git rev-parse HEAD`
//! (with `-dirty` when tracked files differ from it) as `--git-revision`; without the flag the
//! manifest records `null`. The lock file's SHA-256 is recorded when the file exists.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

/// The lock file read when `--lock` is not given (recorded only if it exists).
const DEFAULT_LOCK: &str = "yocto/secretvm.lock";

/// `secretvm build --from-deploy BUILD_DIR [--machine NAME]...`.
#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// Skip bitbake: collect from this existing bitbake build directory (the one holding
    /// tmp-<machine>-glibc/).
    #[arg(long, value_name = "BUILD_DIR")]
    pub(crate) from_deploy: Option<PathBuf>,
    /// Only this machine (repeatable; all machines of the config by default).
    #[arg(long = "machine", value_name = "NAME")]
    pub(crate) machines: Vec<String>,
    /// The build config.
    #[arg(long, value_name = "FILE", default_value = "yocto/secretvm.toml")]
    pub(crate) config: PathBuf,
    /// Where the artifacts go.
    #[arg(long, value_name = "DIR", default_value = "artifacts")]
    pub(crate) out: PathBuf,
    /// The lock file whose SHA-256 the manifest records [default: yocto/secretvm.lock, if it
    /// exists].
    #[arg(long, value_name = "FILE")]
    pub(crate) lock: Option<PathBuf>,
    /// The git revision the release is built from, recorded in manifest.json.
    #[arg(long, value_name = "REV")]
    pub(crate) git_revision: Option<String>,
}

/// Runs `secretvm build`.
#[allow(clippy::print_stderr, clippy::print_stdout)]
pub(crate) fn run(args: &BuildArgs) -> Result<()> {
    let Some(build_dir) = &args.from_deploy else {
        bail!(
            "the bitbake stage of `secretvm build` is not wired in yet; run bitbake yourself \
             and pass --from-deploy BUILD_DIR (the directory holding tmp-<machine>-glibc/)"
        );
    };
    let text = fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read {}", args.config.display()))?;
    let config = secretvm_yocto::config::parse(&args.config.display().to_string(), &text)?;
    let names: Vec<&str> = args.machines.iter().map(String::as_str).collect();
    let machines = config.select_machines(&names)?;
    let lock_sha256 = lock_sha256(args)?;

    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let collected =
        secretvm_yocto::collect::collect(&machines, build_dir, &args.out, &mut |path| {
            eprintln!("writing {}", args.out.join(path).display());
        })?;
    let summary = secretvm_yocto::collect::write_manifest(
        &args.out,
        &collected,
        args.git_revision.as_deref(),
        lock_sha256.as_deref(),
    )?;

    let mut files: Vec<_> = collected.files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let total: u64 = files.iter().map(|f| f.len).sum();
    eprintln!();
    for f in &files {
        eprintln!("{:>12}  {}", human(f.len), f.path);
    }
    eprintln!("{:>12}  {} files in {}", human(total), files.len(), args.out.display());
    eprintln!("manifest: sha256sum.txt, digest.txt, manifest.json");
    let listed: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let others = unlisted(&args.out, &listed);
    if !others.is_empty() {
        eprintln!("not in this manifest (left from an earlier run?): {}", others.join(", "));
    }
    println!("digest {}", summary.digest);
    Ok(())
}

/// Files in `out` and its subdirectories (one level) that are neither `listed` nor the manifest.
fn unlisted(out: &Path, listed: &[&str]) -> Vec<String> {
    let manifest = ["sha256sum.txt", "digest.txt", "manifest.json"];
    let mut found = Vec::new();
    let entries = |dir: &Path| -> Vec<(String, bool)> {
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                (e.file_name().to_string_lossy().into_owned(), is_dir)
            })
            .collect()
    };
    for (name, is_dir) in entries(out) {
        if !is_dir {
            found.push(name);
            continue;
        }
        for (inner, _) in entries(&out.join(&name)) {
            found.push(format!("{name}/{inner}"));
        }
    }
    found.retain(|f| !listed.contains(&f.as_str()) && !manifest.contains(&f.as_str()));
    found.sort();
    found
}

/// The SHA-256 of the lock file: `--lock` must exist; the default is used only if it exists.
fn lock_sha256(args: &BuildArgs) -> Result<Option<String>> {
    let path = match &args.lock {
        Some(path) => path.clone(),
        None if fs::metadata(DEFAULT_LOCK).is_ok() => PathBuf::from(DEFAULT_LOCK),
        None => return Ok(None),
    };
    let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(secretvm_measure::sha256(&bytes).to_string()))
}

/// A size for people: bytes below 1 KiB, else KiB, MiB or GiB with one decimal.
fn human(len: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if len < 1024 {
        return format!("{len} B");
    }
    let mut value = len as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
