//! `cargo xtask bench`: speed and memory of our writers against the peer tools, measured in the
//! same run on the same input, reported as medians and ratios.
//!
//! `initramfs`: `secretvm pack initramfs --from-dir` against the upstream pipeline
//! `find . | LC_ALL=C sort | cpio -o -H newc --reproducible | gzip -9 -n`, once with gzip -9 and
//! once without compression. The default input is the Debian kernel's modules tree that
//! `cargo xtask deps` unpacks (a realistic initramfs payload).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{cmd, deps};

/// Flags of `cargo xtask bench`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// What to measure.
    #[arg(value_enum)]
    what: What,
    /// The input tree (default: the unpacked kernel modules from `cargo xtask deps`).
    #[arg(long)]
    tree: Option<PathBuf>,
    /// Runs per tool; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum What {
    Initramfs,
}

/// One measured run: wall seconds and peak resident memory in KiB (if `/usr/bin/time` exists).
struct Sample {
    seconds: f64,
    peak_kib: Option<u64>,
}

pub(crate) fn run(root: &Path, args: &Args) -> Result<()> {
    match args.what {
        What::Initramfs => initramfs(root, args),
    }
}

fn initramfs(root: &Path, args: &Args) -> Result<()> {
    let tree = match &args.tree {
        Some(tree) => tree.clone(),
        None => {
            let tools = deps::ensure(root, true)?;
            let modules = tools
                .env
                .iter()
                .find(|(k, _)| *k == "SECRETVM_KERNEL_MODULES")
                .map(|(_, v)| v.clone())
                .context("no kernel modules tree")?;
            modules.parent().context("modules dir has no parent")?.to_path_buf()
        }
    };
    let tree = tree.canonicalize().with_context(|| format!("no tree at {}", tree.display()))?;
    if cmd::on_path("cpio").is_none() || cmd::on_path("gzip").is_none() {
        bail!("the peer pipeline needs GNU cpio and gzip: run `cargo xtask deps`");
    }
    let secretvm = crate::build::release_binary(root)?;
    let work = root.join("target/bench");
    fs::create_dir_all(&work)?;
    let entries = cmd::output(cmd::new("sh", &tree).args(["-c", "find . | wc -l"]))?;
    let bytes = cmd::output(cmd::new("du", &tree).args(["-sb", "."]))?;
    println!(
        "input: {} ({} entries, {} bytes apparent)",
        tree.display(),
        entries.trim(),
        bytes.split_whitespace().next().unwrap_or("?")
    );

    for gzip in [true, false] {
        let ours_out = work.join(if gzip { "ours.cpio.gz" } else { "ours.cpio" });
        let peer_out = work.join(if gzip { "peer.cpio.gz" } else { "peer.cpio" });
        let mut ours_args = vec![
            "pack".to_string(),
            "initramfs".into(),
            "--owner-root".into(),
            "--from-dir".into(),
            tree.display().to_string(),
            "-o".into(),
            ours_out.display().to_string(),
        ];
        if !gzip {
            ours_args.push("--no-gzip".into());
        }
        let compress = if gzip { " | gzip -9 -n" } else { "" };
        let peer_script = format!(
            "find . | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet --owner=0:0{compress} \
             > '{}'",
            peer_out.display()
        );
        let mut ours = Vec::new();
        let mut peer = Vec::new();
        for _ in 0..args.runs {
            ours.push(measure(&work, &tree, secretvm.as_os_str(), &ours_args)?);
            peer.push(measure(
                &work,
                &tree,
                "sh".as_ref(),
                &["-c".to_string(), peer_script.clone()],
            )?);
        }
        let (o, p) = (summary(&mut ours), summary(&mut peer));
        let label = if gzip { "cpio + gzip -9" } else { "cpio only" };
        println!("{label}:");
        println!(
            "  secretvm pack initramfs: median {:.3} s (min {:.3}, max {:.3}), peak {} , {} bytes",
            o.0,
            o.1,
            o.2,
            kib(o.3),
            fs::metadata(&ours_out)?.len()
        );
        println!(
            "  find|sort|cpio{}: median {:.3} s (min {:.3}, max {:.3}), peak {} , {} bytes",
            if gzip { "|gzip -9 -n" } else { "" },
            p.0,
            p.1,
            p.2,
            kib(p.3),
            fs::metadata(&peer_out)?.len()
        );
        println!("  time ratio secretvm/peer: {:.2}", o.0 / p.0);
    }
    Ok(())
}

/// Median, min, max seconds and the largest peak memory of the samples.
fn summary(samples: &mut [Sample]) -> (f64, f64, f64, Option<u64>) {
    samples.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let median = samples[samples.len() / 2].seconds;
    let peak = samples.iter().filter_map(|s| s.peak_kib).max();
    (median, samples[0].seconds, samples[samples.len() - 1].seconds, peak)
}

fn kib(peak: Option<u64>) -> String {
    peak.map_or("n/a".to_string(), |k| format!("{:.1} MiB RSS", k as f64 / 1024.0))
}

/// Runs `program args` in `dir`, under `/usr/bin/time` when available for the peak memory.
fn measure(work: &Path, dir: &Path, program: &std::ffi::OsStr, args: &[String]) -> Result<Sample> {
    let rss_file = work.join("rss.txt");
    let time = Path::new("/usr/bin/time");
    let mut command = if time.exists() {
        let mut c = cmd::new(time, dir);
        c.args(["-f", "%M", "-o"]).arg(&rss_file).arg(program);
        c
    } else {
        cmd::new(program, dir)
    };
    command.args(args).env("SOURCE_DATE_EPOCH", "1700000000");
    let start = Instant::now();
    cmd::output(&mut command)?;
    let seconds = start.elapsed().as_secs_f64();
    let peak_kib = fs::read_to_string(&rss_file).ok().and_then(|s| s.trim().parse().ok());
    Ok(Sample { seconds, peak_kib })
}
