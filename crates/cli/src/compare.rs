//! `secretvm compare A B`: where two releases (directories with `sha256sum.txt`) or two
//! artifacts differ, as `secretvm_artifact::compare` explains it; exit 0 when identical, 1 when
//! not.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use secretvm_artifact::compare::{
    self, BLOCK, Change, Difference, FileComparison, ReleaseComparison,
};

/// `secretvm compare`.
#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The first release directory (holding sha256sum.txt), or a file.
    a: PathBuf,
    /// The second release directory, or a file.
    b: PathBuf,
    /// Show at most this many differing entries or values per file.
    #[arg(long, value_name = "N", default_value_t = 50)]
    limit: usize,
}

/// Runs `secretvm compare`, printing the report on stdout.
pub(crate) fn run(args: &CompareArgs) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let identical = match (args.a.is_dir(), args.b.is_dir()) {
        (true, true) => {
            let c = compare::compare_releases(&args.a, &args.b)?;
            write_release(&mut out, &c, args.limit)?;
            c.identical()
        }
        (false, false) => match compare::compare_files(&args.a, &args.b)? {
            None => {
                writeln!(out, "identical")?;
                true
            }
            Some(difference) => {
                let name = args.a.display().to_string();
                write_file(&mut out, &FileComparison { path: name, difference }, args.limit)?;
                false
            }
        },
        _ => bail!("compare two release directories or two files, not one of each"),
    };
    Ok(if identical { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn write_release(out: &mut impl Write, c: &ReleaseComparison, limit: usize) -> Result<()> {
    if let Some((a, b)) = &c.digests {
        if a == b {
            writeln!(out, "digest.txt: {a} in both")?;
        } else {
            writeln!(out, "digest.txt: {a} -> {b}")?;
        }
    }
    writeln!(
        out,
        "{} files differ, {} only in the first, {} only in the second, {} the same",
        c.differing.iter().filter(|f| f.path != compare::MANIFEST).count(),
        c.only_in_a.len(),
        c.only_in_b.len(),
        c.same
    )?;
    for path in &c.only_in_a {
        writeln!(out, "{path}: only in the first")?;
    }
    for path in &c.only_in_b {
        writeln!(out, "{path}: only in the second")?;
    }
    for file in &c.differing {
        write_file(out, file, limit)?;
    }
    Ok(())
}

fn write_file(out: &mut impl Write, file: &FileComparison, limit: usize) -> Result<()> {
    let path = &file.path;
    match &file.difference {
        Difference::Entries(changes) => {
            writeln!(out, "{path}: {} entries differ", changes.len())?;
            for change in changes.iter().take(limit) {
                let what = match &change.change {
                    Change::Added => "only in the second".to_owned(),
                    Change::Removed => "only in the first".to_owned(),
                    Change::Fields(fields) => {
                        fields.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                    }
                };
                writeln!(out, "  {}: {what}", change.path)?;
            }
            more(out, changes.len(), limit)?;
        }
        Difference::Order => {
            writeln!(out, "{path}: the same entries in another order")?;
        }
        Difference::MadeFrom(source) => {
            writeln!(out, "{path}: made from {source}, which differs (see there)")?;
        }
        Difference::Json { changes, total } => {
            writeln!(out, "{path}: {total} values differ")?;
            let absent = || "(absent)".to_owned();
            for change in changes.iter().take(limit) {
                let a = change.a.clone().unwrap_or_else(absent);
                let b = change.b.clone().unwrap_or_else(absent);
                writeln!(out, "  {}: {a} -> {b}", change.path)?;
            }
            more(out, *total, limit.min(changes.len()))?;
        }
        Difference::Blocks { len_a, len_b, first, blocks, decompressed } => {
            let total = len_a.max(len_b).div_ceil(BLOCK);
            writeln!(
                out,
                "{path}: {blocks} of {total} {BLOCK}-byte blocks differ, the first byte at \
                 offset {first} ({first:#x}); {len_a} -> {len_b} bytes{}",
                if *decompressed { ", decompressed" } else { "" }
            )?;
        }
        Difference::Compression { first } => {
            writeln!(
                out,
                "{path}: the same content compressed differently; the gzip files differ from \
                 byte {first} ({first:#x})"
            )?;
        }
        Difference::Unreadable { side, reason } => {
            let which = if *side == 'a' { "first" } else { "second" };
            writeln!(out, "{path}: the {which} cannot be read: {reason}")?;
        }
    }
    Ok(())
}

fn more(out: &mut impl Write, total: usize, shown: usize) -> Result<()> {
    if total > shown {
        writeln!(out, "  ... and {} more", total - shown)?;
    }
    Ok(())
}
