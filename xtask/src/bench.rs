//! `cargo xtask bench`: speed and memory of our writers against the peer tools, measured in the
//! same run on the same input, reported as medians and ratios.
//!
//! `initramfs`: `secretvm pack initramfs --from-dir` against the upstream pipeline
//! `find . | LC_ALL=C sort | cpio -o -H newc --reproducible | gzip -9 -n`, once with gzip -9 and
//! once without compression. The default input is the Debian kernel's modules tree that
//! `cargo xtask deps` unpacks (a realistic initramfs payload).
//!
//! `measure`: `secretvm measure snp` against sev-snp-measure (from the venv `cargo xtask deps`
//! makes) with the same flags: 4 vCPUs, the 4 MiB AMD SEV OVMF, the 11.7 MB Debian cloud kernel
//! and an initrd from the shared vectors; the two digests must be equal or the bench fails. Then
//! `secretvm measure tdx` (MRTD + RTMR0-2, TDX OVMF, same kernel and initrd) alone, against the
//! issue's 20 ms target.
//!
//! `provenance`: `secretvm verify provenance` against sigstore-python (pinned, in a venv under
//! `target/tools/sigstore-python`, run offline with the vectors' ClientTrustConfig) on the
//! must-verify case `reusable-workflow-signer`. Then `secretvm verify release` over a directory of
//! generated files against a plain parallel sha256 of the same files (`xargs -P` over
//! `sha256sum`, and over `openssl dgst -sha256`, which uses the CPU's SHA extensions as we do): the
//! generated files are not subjects of any bundle, so every file fails the subject check (exit 1,
//! expected) after being hashed; the time is therefore process start + hashing every file + one
//! bundle verification per file. The bench checks that every file failed at the subject check.
//!
//! `pack`: builds a realistic rootfs cpio once (the Debian 12 packages of
//! `shared/docs/packing.md` §6, `apt-get download` + `dpkg -x`, then `find | sort | cpio`), then
//! times the upstream path (`cpio -idm` into a fresh directory + xorriso with the upstream
//! flags), `secretvm pack iso`, and the I/O floor (`cat` the cpio + `cp` it), and says whether
//! our ISO has the same sha256 as xorriso's.
//!
//! `compare`: the same rootfs cpio against a second one GNU cpio makes from a copy of its tree
//! with three changes (one byte of the largest file, the mode of the first program in
//! `usr/bin`, a file added); `secretvm compare` against diffoscope (pinned, in a venv under
//! `target/tools/diffoscope`), both of which must exit 1 and name the three paths.
//!
//! `pin`: what the initramfs does before it maps the OS image, on the bench rootfs made into an
//! ISO by `secretvm pack iso` (the OS image the TDX and SEV inits pin): `secretvm-guest`'s one
//! read giving both the image's sha256 and its dm-verity tree (the package's `verity_tree`
//! example, the program's own tree code without the device-mapper calls this host cannot make)
//! against the two reads it replaced, `veritysetup format --no-superblock` and `sha256sum`, with
//! the same salt and block sizes, and each of those alone; ours also on one CPU (`taskset`), as
//! in a guest with one vCPU. The root digest must equal veritysetup's and the sha256
//! sha256sum's, or the bench fails. First with the image in the page cache (one untimed read
//! first), the hashing cost; then with the image evicted from the page cache before every run
//! (`dd iflag=nocache count=0`), as a guest reads its virtual disk, against `cat` (the read
//! alone) as the floor.

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
    /// `secretvm pack initramfs` against find | sort | cpio (| gzip -9 -n).
    Initramfs,
    /// `secretvm measure snp` against sev-snp-measure; `secretvm measure tdx` alone.
    Measure,
    /// `secretvm verify provenance` against sigstore-python; `verify release` against sha256sum.
    Provenance,
    /// `secretvm pack iso` against `cpio -idm` + xorriso and against the I/O floor.
    Pack,
    /// `secretvm compare` against diffoscope on two root file system cpios.
    Compare,
    /// `secretvm-guest`'s one-read sha256 + dm-verity tree against veritysetup + sha256sum.
    Pin,
}

/// One measured run: wall seconds and peak resident memory in KiB (if `/usr/bin/time` exists).
struct Sample {
    seconds: f64,
    peak_kib: Option<u64>,
}

pub(crate) fn run(root: &Path, args: &Args) -> Result<()> {
    match args.what {
        What::Initramfs => initramfs(root, args),
        What::Measure => measure_bench(root, args),
        What::Provenance => provenance_bench(root, args),
        What::Pack => pack_bench(root, args),
        What::Compare => compare_bench(root, args),
        What::Pin => pin_bench(root, args),
    }
}

fn initramfs(root: &Path, args: &Args) -> Result<()> {
    let tree = match &args.tree {
        Some(tree) => tree.clone(),
        None => {
            let tools = deps::ensure(root, true)?;
            let modules = tools.get("SECRETVM_KERNEL_MODULES")?;
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
    Ok(measure_output(work, dir, program, args, &[0])?.0)
}

/// Like [`measure`], but accepts any exit code in `ok` and also returns stdout and stderr.
fn measure_output(
    work: &Path,
    dir: &Path,
    program: &std::ffi::OsStr,
    args: &[String],
    ok: &[i32],
) -> Result<(Sample, String)> {
    let rss_file = work.join("rss.txt");
    let _ = fs::remove_file(&rss_file);
    let time = Path::new("/usr/bin/time");
    let mut command = if time.exists() {
        let mut c = cmd::new(time, dir);
        c.args(["-f", "%M", "-o"]).arg(&rss_file).arg(program);
        c
    } else {
        cmd::new(program, dir)
    };
    command.args(args).env("SOURCE_DATE_EPOCH", EPOCH.to_string());
    let shown = cmd::display(&command);
    command.stdin(std::process::Stdio::null());
    let start = Instant::now();
    let out = command.output().with_context(|| format!("cannot start `{shown}`"))?;
    let seconds = start.elapsed().as_secs_f64();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.code().is_some_and(|c| ok.contains(&c)) {
        bail!("`{shown}` ended with {} (expected exit {ok:?}): {}", out.status, text.trim());
    }
    // GNU time writes "Command exited with non-zero status N" before the format line.
    let peak_kib = fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()));
    Ok((Sample { seconds, peak_kib }, text))
}

/// `SOURCE_DATE_EPOCH` of every measured process.
const EPOCH: u64 = 1_700_000_000;

/// Seconds as milliseconds below one second, else as seconds.
fn secs(s: f64) -> String {
    if s < 1.0 { format!("{:.1} ms", s * 1000.0) } else { format!("{s:.3} s") }
}

/// Prints one tool's line and returns its median.
fn report(label: &str, samples: &mut [Sample]) -> f64 {
    let (median, min, max, peak) = summary(samples);
    println!(
        "  {label}: median {} (min {}, max {}), peak {}, {} runs",
        secs(median),
        secs(min),
        secs(max),
        kib(peak),
        samples.len()
    );
    median
}

/// The load average and CPU count, printed with every bench so noisy numbers can be judged.
fn print_load() {
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "machine: {cpus} CPUs, load average {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
}

/// The shared test vectors: `$SECRETVM_VECTORS`, by default `../shared/vectors` beside the
/// workspace (as the tests find them).
fn vectors(root: &Path) -> Result<PathBuf> {
    let dir = std::env::var_os("SECRETVM_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/vectors"));
    dir.canonicalize()
        .with_context(|| format!("no test vectors at {} (set SECRETVM_VECTORS)", dir.display()))
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// The SNP launch of the measure bench, as flags both tools accept.
const SNP_APPEND: &str = "console=ttyS0 loglevel=7 clearcpuid=mtrr,rtmr ro";

fn measure_bench(root: &Path, args: &Args) -> Result<()> {
    print_load();
    let inputs = vectors(root)?.join("measure/inputs");
    let snp_ovmf = inputs.join("firmware/OVMF.amdsev.fd");
    let tdx_ovmf = inputs.join("firmware/OVMF.inteltdx.ms.fd");
    let kernel = inputs.join("kernel/vmlinuz-6.12.117+deb13-cloud-amd64");
    let initrd = inputs.join("initrd/initramfs.cpio.gz");
    for file in [&snp_ovmf, &tdx_ovmf, &kernel, &initrd] {
        let len = fs::metadata(file).with_context(|| format!("no {}", file.display()))?.len();
        println!("input: {} ({len} bytes)", file.display());
    }
    let tools = deps::ensure(root, true)?;
    let peer = tools.get("SECRETVM_SEV_SNP_MEASURE")?.to_path_buf();
    let secretvm = crate::build::release_binary(root)?;
    let work = root.join("target/bench");
    fs::create_dir_all(&work)?;

    let mut snp_flags = strings(&["--mode", "snp", "--vcpus", "4", "--vcpu-type", "EPYC-v4"]);
    snp_flags.extend(strings(&["--guest-features", "0x1", "--append", SNP_APPEND]));
    for (flag, file) in [("--ovmf", &snp_ovmf), ("--kernel", &kernel), ("--initrd", &initrd)] {
        snp_flags.extend([flag.to_string(), path_arg(file)]);
    }
    let ours_args: Vec<String> =
        strings(&["measure", "snp"]).into_iter().chain(snp_flags.iter().cloned()).collect();
    let mut peer_args = snp_flags.clone();
    peer_args.extend(strings(&["--output-format", "hex"]));

    // One unmeasured run each: warms the page cache and checks that both agree.
    let (_, ours_digest) = measure_output(&work, root, secretvm.as_os_str(), &ours_args, &[0])?;
    let (_, peer_digest) = measure_output(&work, root, peer.as_os_str(), &peer_args, &[0])?;
    let (ours_digest, peer_digest) = (ours_digest.trim(), peer_digest.trim());
    if !ours_digest.eq_ignore_ascii_case(peer_digest) {
        bail!("the SNP digests differ: secretvm {ours_digest}, sev-snp-measure {peer_digest}");
    }
    println!("SNP launch digest (4 vCPUs, EPYC-v4, kernel + initrd + cmdline): {ours_digest}");
    println!("  secretvm and sev-snp-measure agree");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        ours.push(measure(&work, root, secretvm.as_os_str(), &ours_args)?);
        theirs.push(measure(&work, root, peer.as_os_str(), &peer_args)?);
    }
    let o = report("secretvm measure snp", &mut ours);
    let p = report("sev-snp-measure 0.0.13", &mut theirs);
    println!(
        "  time ratio secretvm/peer: {:.3} ({:.1}x faster; issue target: >= 10x and <= 15 ms)",
        o / p,
        p / o
    );

    // TDX: MRTD + RTMR0-2 (RTMR0 from the ACPI digests of the vectors' TDX cases).
    let mut tdx_args = strings(&["measure", "tdx", "--vcpus", "4", "--memory", "2G"]);
    tdx_args.extend(strings(&["--append", SNP_APPEND]));
    for (flag, file) in [("--ovmf", &tdx_ovmf), ("--kernel", &kernel), ("--initrd", &initrd)] {
        tdx_args.extend([flag.to_string(), path_arg(file)]);
    }
    tdx_args.extend(strings(&[
        "--acpi-loader",
        "095d04cf26fe03aef6e3561fa24c1aa1cea93f4aeaf563b1f9f7616184c53454875925759434769cec2490acb563a337",
        "--acpi-rsdp",
        "8d9a4d4777a1bc77ecd9d8d37a4628129a80052a510320159a20a923bd07a0e90d8d1f2e1ebf088992b25f0d0fa672ef",
        "--acpi-tables",
        "3070721e169bc41884724cb0e6b3082e1baf249083d8b389181ba50b9afa951057876c380b8870e8c2facf2eff67a2b6",
    ]));
    let (_, registers) = measure_output(&work, root, secretvm.as_os_str(), &tdx_args, &[0])?;
    for register in ["mrtd:", "rtmr0:", "rtmr1:", "rtmr2:"] {
        if !registers.lines().any(|l| l.starts_with(register)) {
            bail!("`secretvm measure tdx` printed no {register} line:\n{registers}");
        }
    }
    println!("TDX MRTD + RTMR0-2 (4 vCPUs, 2 GiB, TDX OVMF, same kernel and initrd):");
    let mut tdx = Vec::new();
    for _ in 0..args.runs {
        tdx.push(measure(&work, root, secretvm.as_os_str(), &tdx_args)?);
    }
    let t = report("secretvm measure tdx", &mut tdx);
    println!(
        "  against the issue's 20 ms target: {} ({})",
        secs(t),
        if t <= 0.020 { "met" } else { "not met" }
    );
    Ok(())
}

/// The must-verify provenance case the bench uses: an artifact file, a public-good bundle with a
/// dsse tlog entry (a bundle sigstore-python can verify), and gh's policy for it.
const PROVENANCE_CASE: &str = "reusable-workflow-signer";
const PROV_BUNDLE: &str = "bundles/reusable-workflow-attestation.sigstore.json";
const PROV_ARTIFACT: &str = "artifacts/reusable-workflow-artifact";
const PROV_ROOT: &str = "roots/trusted_root.jsonl";
const PROV_TRUST_CONFIG: &str = "sigstore-python/clienttrustconfig_public_good.json";
const PROV_REPO: &str = "malancas/attest-demo";
const PROV_SIGNER: &str =
    "github.com/github/artifact-attestations-workflows/.github/workflows/attest.yml";
const PROV_SAN: &str = "https://github.com/github/artifact-attestations-workflows/.github/workflows/attest.yml@09b495c3f12c7881b3cc17209a327792065c1a1d";
const PROV_REF: &str = "refs/heads/main";
const PROV_SHA: &str = "95baf27389e83e6a5c48f42e190d48d7abcea19e";
/// sigstore-python, pinned: the version the provenance vectors were checked with.
const SIGSTORE_PYTHON: &str = "sigstore==4.5.1";

/// The generated release directory: this many files of this many MiB.
const RELEASE_FILES: usize = 4;
const RELEASE_MIB: usize = 256;

fn provenance_bench(root: &Path, args: &Args) -> Result<()> {
    print_load();
    let vectors = vectors(root)?.join("provenance");
    let cases = fs::read_to_string(vectors.join("cases.json"))?;
    if !cases.contains(&format!("\"{PROVENANCE_CASE}\"")) {
        bail!("cases.json has no case {PROVENANCE_CASE}");
    }
    let secretvm = crate::build::release_binary(root)?;
    let work = root.join("target/bench");
    fs::create_dir_all(&work)?;
    let policy = |v: &mut Vec<String>| {
        v.extend(strings(&["--bundle", PROV_BUNDLE, "--custom-trusted-root", PROV_ROOT]));
        v.extend(strings(&["--repo", PROV_REPO, "--signer-workflow", PROV_SIGNER]));
        v.extend(strings(&["--source-ref", PROV_REF, "--source-digest", PROV_SHA]));
        v.push("--deny-self-hosted-runners".into());
    };
    let mut ours_args = strings(&["verify", "provenance", PROV_ARTIFACT]);
    policy(&mut ours_args);
    println!("case {PROVENANCE_CASE}: {PROV_BUNDLE} over {PROV_ARTIFACT}");
    measure_output(&work, &vectors, secretvm.as_os_str(), &ours_args, &[0])
        .context("secretvm does not verify the bench's case")?;

    let peer = sigstore_python(root)?;
    let peer_args = strings(&[
        "--trust-config",
        PROV_TRUST_CONFIG,
        "verify",
        "github",
        "--offline",
        "--bundle",
        PROV_BUNDLE,
        "--cert-identity",
        PROV_SAN,
        "--repository",
        PROV_REPO,
        "--ref",
        PROV_REF,
        "--sha",
        PROV_SHA,
        PROV_ARTIFACT,
    ]);
    let peer_ok = match measure_output(&work, &vectors, peer.as_os_str(), &peer_args, &[0]) {
        Ok(_) => true,
        Err(err) => {
            println!(
                "  sigstore-python does not verify offline here, so only ours is timed: {err:#}"
            );
            false
        }
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        ours.push(measure(&work, &vectors, secretvm.as_os_str(), &ours_args)?);
        if peer_ok {
            theirs.push(measure(&work, &vectors, peer.as_os_str(), &peer_args)?);
        }
    }
    let o = report("secretvm verify provenance", &mut ours);
    if peer_ok {
        let p = report(
            &format!("sigstore-python ({SIGSTORE_PYTHON}) verify github --offline"),
            &mut theirs,
        );
        println!(
            "  time ratio secretvm/peer: {:.3} ({:.1}x faster; issue target: >= 25x)",
            o / p,
            p / o
        );
    }

    // verify release over large generated files.
    let dir = release_dir(&work)?;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "release directory: {} ({RELEASE_FILES} generated files x {RELEASE_MIB} MiB); the files \
         are no subjects of the bundle, so `verify release` exits 1 after hashing every file and \
         checking the bundle once per file",
        dir.display()
    );
    let mut release_args = strings(&["verify", "release", &path_arg(&dir)]);
    policy(&mut release_args);
    // Two plain parallel sha256 peers: coreutils (portable C, no SHA extensions) and OpenSSL
    // (uses the CPU's SHA extensions where present, as our sha2 does).
    let mut peers = vec![("sha256sum", "sha256sum")];
    if cmd::on_path("openssl").is_some() {
        peers.push(("openssl", "openssl dgst -sha256 -r"));
    }
    let scripts: Vec<String> = peers
        .iter()
        .map(|(_, tool)| {
            format!("find . -maxdepth 1 -type f -print0 | xargs -0 -P {cpus} -n 1 {tool}")
        })
        .collect();
    let sh = |script: &str| vec!["-c".to_string(), script.to_string()];
    // One unmeasured run each: warms the page cache; the peers must agree with each other, and
    // every file must fail at the subject check (so it was hashed and compared).
    let (_, ours_text) =
        measure_output(&work, &vectors, secretvm.as_os_str(), &release_args, &[1])?;
    let failed_at_subject = ours_text.lines().filter(|l| l.contains("subject digest")).count();
    println!(
        "  files that secretvm hashed and rejected at the subject-digest check: \
         {failed_at_subject}/{RELEASE_FILES} (its failure messages do not print the digest, so \
         the digest values themselves are not compared here)"
    );
    if failed_at_subject != RELEASE_FILES {
        bail!("unexpected `verify release` output:\n{}", ours_text.trim());
    }
    let mut sums = Vec::new();
    for script in &scripts {
        let (_, out) = measure_output(&work, &dir, "sh".as_ref(), &sh(script), &[0])?;
        let mut digests: Vec<String> = out
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(|d| d.trim_start_matches('\\').into()))
            .collect();
        digests.sort();
        sums.push(digests);
    }
    if sums.iter().any(|s| s.len() != RELEASE_FILES || *s != sums[0]) {
        bail!("the parallel sha256 peers disagree: {sums:?}");
    }
    let mut ours = Vec::new();
    let mut theirs: Vec<Vec<Sample>> = scripts.iter().map(|_| Vec::new()).collect();
    for _ in 0..args.runs {
        ours.push(measure_output(&work, &vectors, secretvm.as_os_str(), &release_args, &[1])?.0);
        for (script, samples) in scripts.iter().zip(&mut theirs) {
            samples.push(measure(&work, &dir, "sh".as_ref(), &sh(script))?);
        }
    }
    let o = report("secretvm verify release (hash all + verify per file, exit 1)", &mut ours);
    for ((name, _), (script, samples)) in peers.iter().zip(scripts.iter().zip(&mut theirs)) {
        let p = report(script, samples);
        println!("  time ratio secretvm/{name}: {:.3} (issue target: <= 1.2)", o / p);
    }
    Ok(())
}

/// sigstore-python, pinned, in a virtualenv under `target/tools/sigstore-python`.
fn sigstore_python(root: &Path) -> Result<PathBuf> {
    venv_tool(root, "sigstore-python", &[SIGSTORE_PYTHON], "sigstore")
}

/// `program` from the pinned PyPI `packages`, in a virtualenv under `target/tools/<name>`
/// (made once).
fn venv_tool(root: &Path, name: &str, packages: &[&str], program: &str) -> Result<PathBuf> {
    let dir = root.join("target/tools").join(name);
    let want = packages.join(" ");
    if fs::read_to_string(dir.join(".complete")).ok().as_deref() != Some(want.as_str()) {
        let python = cmd::on_path("python3").context("python3 is not on PATH")?;
        cmd::run(cmd::new(python, root).args(["-m", "venv", "--clear"]).arg(&dir))?;
        cmd::run(cmd::new(dir.join("bin/pip"), root).args(["install", "-q"]).args(packages))
            .with_context(|| format!("cannot pip install {want}"))?;
        fs::write(dir.join(".complete"), &want)?;
    }
    Ok(dir.join("bin").join(program))
}

/// Writes the release directory once: deterministic pseudo-random files (xorshift64*).
fn release_dir(work: &Path) -> Result<PathBuf> {
    use std::io::Write;
    let dir = work.join("release");
    let marker = work.join("release.complete");
    let want = format!("{RELEASE_FILES}x{RELEASE_MIB}");
    if fs::read_to_string(&marker).is_ok_and(|m| m == want) {
        return Ok(dir);
    }
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..RELEASE_FILES {
        let path = dir.join(format!("artifact-{i}.bin"));
        let mut file = std::io::BufWriter::new(fs::File::create(&path)?);
        let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ (i as u64 + 1);
        for _ in 0..RELEASE_MIB {
            for chunk in buf.chunks_exact_mut(8) {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                chunk.copy_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
            }
            file.write_all(&buf)?;
        }
        file.flush()?;
    }
    fs::write(&marker, want)?;
    Ok(dir)
}

/// The Debian 12 packages of the realistic rootfs (`shared/docs/packing.md` §6).
const ROOTFS_PACKAGES: &[&str] = &[
    "bash",
    "binutils-x86-64-linux-gnu",
    "busybox-static",
    "ca-certificates",
    "coreutils",
    "cpp-12",
    "curl",
    "dbus",
    "e2fsprogs",
    "g++-12",
    "gcc-12",
    "git",
    "git-man",
    "iproute2",
    "iptables",
    "kmod",
    "libbinutils",
    "libc-bin",
    "libc-dev-bin",
    "libc6",
    "libc6-dev",
    "libcurl4",
    "libgcc-12-dev",
    "libperl5.36",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libssl-dev",
    "libssl3",
    "libstdc++-12-dev",
    "libsystemd-shared",
    "linux-headers-6.1.0-56-common",
    "linux-kbuild-6.1",
    "linux-libc-dev",
    "locales",
    "openssh-client",
    "openssh-server",
    "openssl",
    "perl",
    "perl-base",
    "perl-modules-5.36",
    "python3.11",
    "python3.11-minimal",
    "systemd",
    "tzdata",
    "udev",
    "util-linux",
    "vim",
    "vim-runtime",
];

/// The upstream way of archiving a tree: `find | LC_ALL=C sort | cpio -o -H newc
/// --reproducible` in `tree`, into `out`.
fn gnu_cpio(tree: &Path, out: &Path) -> Result<()> {
    let script = format!(
        "find . | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet > '{}'",
        out.display()
    );
    cmd::run(cmd::new("sh", tree).args(["-c", &script]))
}

/// Checks that `tools` are on PATH for the bench `name`, then builds (once) the bench rootfs;
/// returns its directory `target/bench/rootfs` and the cpio.
fn bench_rootfs(root: &Path, name: &str, tools: &[&str]) -> Result<(PathBuf, PathBuf)> {
    for tool in tools {
        if cmd::on_path(tool).is_none() {
            bail!("the {name} bench needs {tool}: run `cargo xtask deps`");
        }
    }
    let base = root.join("target/bench/rootfs");
    fs::create_dir_all(&base)?;
    let cpio = rootfs_cpio(root, &base)?;
    Ok((base, cpio))
}

/// Builds `target/bench/rootfs/rootfs.cpio` once from the packages above.
fn rootfs_cpio(root: &Path, base: &Path) -> Result<PathBuf> {
    let debs = base.join("debs");
    let tree = base.join("tree");
    let cpio = base.join("rootfs.cpio");
    if base.join("cpio.complete").exists() {
        return Ok(cpio);
    }
    if !debs.join(".complete").exists() {
        fs::create_dir_all(&debs)?;
        let mut download = cmd::new("apt-get", &debs);
        if fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false)
        {
            // apt drops privileges to `_apt`, which cannot write into our target directory.
            download.args(["-o", "APT::Sandbox::User=root"]);
        }
        cmd::run(download.args(["download", "-q"]).args(ROOTFS_PACKAGES)).context(
            "cannot download the rootfs packages (a Debian 12 system with fresh apt lists is needed)",
        )?;
        fs::write(debs.join(".complete"), "")?;
    }
    if tree.exists() {
        fs::remove_dir_all(&tree)?;
    }
    fs::create_dir_all(&tree)?;
    let mut packages: Vec<PathBuf> = fs::read_dir(&debs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    packages.sort();
    for deb in &packages {
        cmd::run(cmd::new("dpkg-deb", root).arg("-x").arg(deb).arg(&tree))
            .with_context(|| format!("cannot unpack {}", deb.display()))?;
    }
    gnu_cpio(&tree, &cpio)?;
    fs::write(base.join("cpio.complete"), format!("{} packages\n", packages.len()))?;
    Ok(cpio)
}

fn pack_bench(root: &Path, args: &Args) -> Result<()> {
    print_load();
    let (base, cpio) =
        bench_rootfs(root, "pack", &["cpio", "xorriso", "apt-get", "dpkg-deb", "sha256sum"])?;
    let secretvm = crate::build::release_binary(root)?;
    let entries = cmd::output(cmd::new("sh", &base.join("tree")).args(["-c", "find . | wc -l"]))?;
    let files =
        cmd::output(cmd::new("sh", &base.join("tree")).args(["-c", "find . -type f | wc -l"]))?;
    println!(
        "input: {} ({} bytes; {} entries, {} regular files)",
        cpio.display(),
        fs::metadata(&cpio)?.len(),
        entries.trim(),
        files.trim()
    );
    let extract = base.join("extract");
    let upstream_iso = base.join("upstream.iso");
    let ours_iso = base.join("ours.iso");
    let copy = base.join("rootfs.cpio.copy");
    let upstream_script = format!(
        "cpio -idm --quiet < '{cpio}' && LC_ALL=C.UTF-8 xorriso -preparer_id xorriso \
         -volume_date all ={EPOCH} -volume_date all_file_dates ={EPOCH} -padding 0 \
         -as mkisofs -iso-level 3 -graft-points -full-iso9660-filenames -uid 0 -gid 0 \
         -output '{iso}' .",
        cpio = cpio.display(),
        iso = upstream_iso.display()
    );
    let ours_args = vec![
        "pack".to_string(),
        "iso".into(),
        path_arg(&cpio),
        "-o".into(),
        path_arg(&ours_iso),
        "--owner-root".into(),
        "--all-times-epoch".into(),
        "--xorriso-compat".into(),
        format!("--source-date-epoch={EPOCH}"),
    ];
    let floor_script = format!(
        "cat '{cpio}' > /dev/null && cp '{cpio}' '{copy}'",
        cpio = cpio.display(),
        copy = copy.display()
    );
    // secretvm syncs the image before renaming it into place (no partial or lost artifact after
    // a crash), so the floor with the same durability also syncs the copy.
    let synced_floor_script = format!("{floor_script} && sync '{copy}'", copy = copy.display());
    let sh = |script: &str| vec!["-c".to_string(), script.to_string()];
    let (mut upstream, mut ours, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    let mut synced_floor = Vec::new();
    // Every command starts with no dirty pages left by the one before (`sync`, untimed): the
    // upstream path leaves about a gigabyte being written back, which would otherwise slow
    // down whatever runs next.
    let settle = || cmd::run(&mut cmd::new("sync", &base));
    for _ in 0..args.runs {
        if extract.exists() {
            fs::remove_dir_all(&extract)?;
        }
        fs::create_dir_all(&extract)?;
        let _ = fs::remove_file(&upstream_iso);
        settle()?;
        upstream.push(measure(&base, &extract, "sh".as_ref(), &sh(&upstream_script))?);
        let _ = fs::remove_file(&ours_iso);
        settle()?;
        ours.push(measure(&base, &base, secretvm.as_os_str(), &ours_args)?);
        let _ = fs::remove_file(&copy);
        settle()?;
        floor.push(measure(&base, &base, "sh".as_ref(), &sh(&floor_script))?);
        let _ = fs::remove_file(&copy);
        settle()?;
        synced_floor.push(measure(&base, &base, "sh".as_ref(), &sh(&synced_floor_script))?);
    }
    fs::remove_dir_all(&extract)?;
    let _ = fs::remove_file(&copy);
    let u = report("upstream: cpio -idm + xorriso", &mut upstream);
    let o = report("secretvm pack iso", &mut ours);
    let f = report("floor: cat rootfs.cpio > /dev/null + cp rootfs.cpio copy", &mut floor);
    let synced =
        report("floor with secretvm's durability: the same + sync copy", &mut synced_floor);
    println!(
        "  time ratio secretvm/upstream: {:.3} ({:.1}x faster; issue target: >= 5x)",
        o / u,
        u / o
    );
    println!(
        "  time ratio secretvm/floor: {:.2} against the synced floor (issue target: <= 1.5), \
         {:.2} against the unsynced one (secretvm syncs before its rename; cp does not)",
        o / synced,
        o / f
    );
    let sums = cmd::output(cmd::new("sha256sum", &base).arg(&upstream_iso).arg(&ours_iso))?;
    let hashes: Vec<&str> = sums.lines().filter_map(|l| l.split_whitespace().next()).collect();
    println!(
        "  ISO sizes: xorriso {} bytes, secretvm {} bytes; sha256 {}",
        fs::metadata(&upstream_iso)?.len(),
        fs::metadata(&ours_iso)?.len(),
        if hashes.len() == 2 && hashes[0] == hashes[1] {
            format!("equal ({})", hashes[0])
        } else {
            format!(
                "DIFFERENT (xorriso {}, secretvm {})",
                hashes.first().unwrap_or(&"?"),
                hashes.get(1).unwrap_or(&"?")
            )
        }
    );
    Ok(())
}

/// diffoscope and the libarchive binding it reads cpio archives with, pinned.
const DIFFOSCOPE: &[&str] = &["diffoscope==332", "libarchive-c==5.3"];

fn compare_bench(root: &Path, args: &Args) -> Result<()> {
    print_load();
    let (base, a) = bench_rootfs(root, "compare", &["cpio", "apt-get", "dpkg-deb", "cp", "find"])?;
    let (b, changed) = changed_rootfs(&base)?;
    let secretvm = crate::build::release_binary(root)?;
    let diffoscope = venv_tool(root, "diffoscope", DIFFOSCOPE, "diffoscope")?;
    println!(
        "input: {} ({} bytes) against {} ({} bytes); changed: {}",
        a.display(),
        fs::metadata(&a)?.len(),
        b.display(),
        fs::metadata(&b)?.len(),
        changed.join(", ")
    );
    let ours_args = vec!["compare".to_string(), path_arg(&a), path_arg(&b)];
    let peer_args = vec!["--no-progress".to_string(), path_arg(&a), path_arg(&b)];
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let (sample, out) = measure_output(&base, &base, secretvm.as_os_str(), &ours_args, &[1])?;
        names_all(&out, &changed, "secretvm compare")?;
        ours.push(sample);
        let (sample, out) = measure_output(&base, &base, diffoscope.as_os_str(), &peer_args, &[1])?;
        names_all(&out, &changed, "diffoscope")?;
        peer.push(sample);
    }
    let o = report("secretvm compare", &mut ours);
    let p = report("diffoscope", &mut peer);
    println!("  time ratio secretvm/diffoscope: {:.3} ({:.1}x faster)", o / p, p / o);
    Ok(())
}

/// Fails unless `output` names every path of `changed`.
fn names_all(output: &str, changed: &[String], tool: &str) -> Result<()> {
    let missing: Vec<&String> = changed.iter().filter(|c| !output.contains(c.as_str())).collect();
    if !missing.is_empty() {
        bail!("{tool} did not name {missing:?}:\n{output}");
    }
    Ok(())
}

/// `rootfs-changed.cpio`: GNU cpio's archive of a copy of the bench tree with one byte of the
/// largest file flipped, the first program in `usr/bin` made mode 0700 and one file added;
/// returns it and the three paths. Made once.
fn changed_rootfs(base: &Path) -> Result<(PathBuf, Vec<String>)> {
    let tree = base.join("tree");
    let copy = base.join("tree-changed");
    let cpio = base.join("rootfs-changed.cpio");
    let marker = base.join("changed.complete");
    if let Ok(text) = fs::read_to_string(&marker) {
        return Ok((cpio, text.lines().map(str::to_owned).collect()));
    }
    if copy.exists() {
        fs::remove_dir_all(&copy)?;
    }
    cmd::run(cmd::new("cp", base).args(["-a"]).arg(&tree).arg(&copy))?;
    let largest = cmd::output(cmd::new("sh", &copy).args([
        "-c",
        "find . -type f -printf '%s %P\\n' | LC_ALL=C sort -k1,1nr -k2 | head -n1 | cut -d' ' -f2-",
    ]))?;
    let largest = largest.trim().to_owned();
    let program = cmd::output(
        cmd::new("sh", &copy)
            .args(["-c", "find usr/bin -type f -perm -u+x | LC_ALL=C sort | head -n1"]),
    )?;
    let program = program.trim().to_owned();
    if largest.is_empty() || program.is_empty() {
        bail!("the bench tree {} has no regular file or no program", tree.display());
    }
    let path = copy.join(&largest);
    let mut bytes = fs::read(&path)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&path, bytes)?;
    cmd::run(cmd::new("chmod", &copy).args(["0700", &program]))?;
    let added = "etc/secretvm-bench-added".to_string();
    fs::write(copy.join(&added), "added by the compare bench\n")?;
    gnu_cpio(&copy, &cpio)?;
    let changed = vec![largest, program, added];
    fs::write(&marker, changed.join("\n"))?;
    Ok((cpio, changed))
}

/// The salt of every tree the pin bench builds: any 32 bytes do, as long as both tools get them.
fn bench_salt() -> String {
    (0u8..32).map(|b| format!("{:02x}", b.wrapping_mul(37) ^ 0x5c)).collect()
}

fn pin_bench(root: &Path, args: &Args) -> Result<()> {
    print_load();
    let (base, cpio) = bench_rootfs(
        root,
        "pin",
        &["cpio", "apt-get", "dpkg-deb", "veritysetup", "sha256sum", "taskset"],
    )?;
    let image = base.join("os-image.iso");
    if !image.exists() {
        // Written to a temporary name and renamed, so it exists only when complete.
        let secretvm = crate::build::release_binary(root)?;
        cmd::run(cmd::new(&secretvm, &base).args([
            "pack".to_string(),
            "iso".into(),
            path_arg(&cpio),
            "-o".into(),
            path_arg(&image),
            "--owner-root".into(),
            "--all-times-epoch".into(),
            format!("--source-date-epoch={EPOCH}"),
        ]))?;
    }
    let target = root.join(crate::test::GUEST_TARGET);
    cmd::run(
        cmd::new("cargo", root)
            .args(["build", "--release", "--locked", "--quiet", "--example", "verity_tree"])
            .arg("--manifest-path")
            .arg(crate::test::guest_manifest(root))
            .arg("--target-dir")
            .arg(&target),
    )
    .context("cannot build secretvm-guest's verity_tree example")?;
    let ours_program = target.join("release/examples/verity_tree");
    let salt = bench_salt();
    // The ISO's file system has 2048-byte blocks; the example picks the data block as the pin
    // does. Its untimed first run also fills the page cache.
    let ours_args = vec![path_arg(&image), "2048".into(), salt.clone()];
    let first = cmd::output(cmd::new(&ours_program, &base).args(&ours_args))?;
    let fields: Vec<&str> = first.split_whitespace().collect();
    let [sha256, root_digest, block, tree_bytes] = fields[..] else {
        bail!("verity_tree printed {first:?}, expected four fields");
    };
    println!(
        "input: {} ({} bytes, {block}-byte data blocks, a {tree_bytes}-byte tree)",
        image.display(),
        fs::metadata(&image)?.len(),
    );
    let hash_file = base.join("os-image.verity");
    let format_script = format!(
        ": > '{hash}' && veritysetup format --no-superblock --hash=sha256 --hash-block-size=4096 \
         --data-block-size={block} --salt={salt} '{image}' '{hash}'",
        hash = hash_file.display(),
        image = image.display()
    );
    let sha256sum_script = format!("sha256sum '{}'", image.display());
    let both_script = format!("{format_script} && {sha256sum_script}");
    let busybox = cmd::on_path("busybox");
    let sh = |script: &str| vec!["-c".to_string(), script.to_string()];
    // A guest may have one vCPU, where the program's two hashing threads take turns.
    let one_cpu_args: Vec<String> = ["-c".to_string(), "0".into(), path_arg(&ours_program)]
        .into_iter()
        .chain(ours_args.clone())
        .collect();
    let (mut ours, mut one_cpu, mut format, mut sum, mut both, mut busy) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let (sample, out) =
            measure_output(&base, &base, ours_program.as_os_str(), &ours_args, &[0])?;
        if out.trim() != first.trim() {
            bail!("verity_tree printed {out:?}, then {first:?} on the same image");
        }
        ours.push(sample);
        one_cpu.push(measure(&base, &base, "taskset".as_ref(), &one_cpu_args)?);
        let (sample, out) = measure_output(&base, &base, "sh".as_ref(), &sh(&format_script), &[0])?;
        let theirs = out.lines().find_map(|l| l.strip_prefix("Root hash:")).map(str::trim);
        if theirs != Some(root_digest) {
            bail!("veritysetup's root hash is {theirs:?}, secretvm-guest's {root_digest}:\n{out}");
        }
        format.push(sample);
        let (sample, out) =
            measure_output(&base, &base, "sh".as_ref(), &sh(&sha256sum_script), &[0])?;
        if out.split_whitespace().next() != Some(sha256) {
            bail!("sha256sum printed {out:?}, secretvm-guest {sha256}");
        }
        sum.push(sample);
        both.push(measure(&base, &base, "sh".as_ref(), &sh(&both_script))?);
        if let Some(busybox) = &busybox {
            let (sample, out) = measure_output(
                &base,
                &base,
                busybox.as_os_str(),
                &["sha256sum".to_string(), path_arg(&image)],
                &[0],
            )?;
            if out.split_whitespace().next() != Some(sha256) {
                bail!("busybox sha256sum printed {out:?}, secretvm-guest {sha256}");
            }
            busy.push(sample);
        }
    }
    // From the disk, as a guest reads its OS image from its virtual disk: the image's pages
    // leave the page cache (`dd iflag=nocache count=0`, untimed) before each run. `cat` is the
    // floor: the read alone.
    let evict = || {
        cmd::run(cmd::new("dd", &base).args([
            format!("if={}", path_arg(&image)),
            "iflag=nocache".into(),
            "count=0".into(),
            "status=none".into(),
        ]))
    };
    let cat_script = format!("cat '{}' > /dev/null", image.display());
    let (mut cold_ours, mut cold_both, mut cold_cat, mut warm_cat) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        evict()?;
        cold_ours.push(measure(&base, &base, ours_program.as_os_str(), &ours_args)?);
        evict()?;
        cold_both.push(measure(&base, &base, "sh".as_ref(), &sh(&both_script))?);
        evict()?;
        cold_cat.push(measure(&base, &base, "sh".as_ref(), &sh(&cat_script))?);
        warm_cat.push(measure(&base, &base, "sh".as_ref(), &sh(&cat_script))?);
    }
    let _ = fs::remove_file(&hash_file);
    println!(
        "  root digest {root_digest} and sha256 {sha256}: equal to veritysetup's and sha256sum's"
    );
    println!("in the page cache:");
    let o = report("secretvm-guest tree + sha256, one read (verity_tree)", &mut ours);
    let one = report("the same on one CPU (taskset -c 0)", &mut one_cpu);
    let f = report("veritysetup format --no-superblock", &mut format);
    let s = report("sha256sum (coreutils)", &mut sum);
    let b = report("veritysetup format && sha256sum", &mut both);
    if busy.is_empty() {
        println!("  busybox sha256sum: not measured (no busybox on PATH)");
    } else {
        let bb = report("busybox sha256sum (the initramfs's)", &mut busy);
        println!(
            "  time ratio secretvm-guest/(veritysetup + busybox sha256sum): {:.2}",
            o / (f + bb)
        );
    }
    println!(
        "  time ratio secretvm-guest/(veritysetup && sha256sum): {:.2}; /veritysetup: {:.2}; \
         /sha256sum: {:.2}; on one CPU, /(veritysetup && sha256sum): {:.2}",
        o / b,
        o / f,
        o / s,
        one / b
    );
    println!("from the disk (the image evicted from the page cache before each run):");
    let co = report("secretvm-guest tree + sha256, one read (verity_tree)", &mut cold_ours);
    let cb = report("veritysetup format && sha256sum", &mut cold_both);
    let cc = report("cat image > /dev/null (the read alone)", &mut cold_cat);
    let wc = report("cat image > /dev/null, the image in the page cache", &mut warm_cat);
    println!(
        "  time ratio secretvm-guest/(veritysetup && sha256sum): {:.2}; /cat: {:.2} \
         (cat from the page cache: {:.2} of cat from the disk)",
        co / cb,
        co / cc,
        wc / cc
    );
    Ok(())
}
