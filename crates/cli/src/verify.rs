//! `secretvm verify provenance` (gh's `attestation verify`, offline) and `secretvm verify
//! release` (every file of a release directory against one bundle), over `secretvm-provenance`.
//!
//! This module reads the files (bundle, trusted root, artifacts), hashes the artifacts, builds
//! the library's `Policy` from gh's flag names, and prints one line per artifact (or JSON).
//! Exit code 0 when every artifact verified, 1 otherwise; clap exits with 2 on a usage error.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use sha2::{Digest, Sha256, Sha512};

use secretvm_provenance::{
    ArtifactDigest, BundleFormat, DigestAlgorithm, Policy, Signer, parse_bundles,
    parse_trusted_roots,
};

/// Verify signed provenance offline.
#[derive(Subcommand)]
pub(crate) enum Verify {
    /// Verify artifacts against a Sigstore build-provenance bundle, as `gh attestation verify`
    /// does, with no network: the trusted root comes from --custom-trusted-root.
    Provenance(Box<ProvenanceArgs>),
    /// Verify every file of a release directory against one bundle, hashing the files once and
    /// in parallel, and report per file.
    Release(Box<ReleaseArgs>),
}

/// `secretvm verify provenance`: the artifacts, then gh's flags.
#[derive(Args)]
pub(crate) struct ProvenanceArgs {
    /// Files to verify, or digests written `sha256:<hex>` or `sha512:<hex>`.
    #[arg(value_name = "ARTIFACT", required = true)]
    pub(crate) artifacts: Vec<String>,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// `secretvm verify release`: a release directory, then gh's flags.
#[derive(Args)]
pub(crate) struct ReleaseArgs {
    /// The release directory: every regular file directly in it (except the bundle and the
    /// trusted root) must be a subject of the bundle.
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

/// The flags of `gh attestation verify` these commands support, with gh's names.
#[derive(Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["repo", "owner"]))]
#[command(group = clap::ArgGroup::new("signer").multiple(false).args(["cert_identity", "cert_identity_regex", "signer_repo", "signer_workflow"]))]
pub(crate) struct CommonArgs {
    /// The bundle: a .json file holds one bundle, a .jsonl file one per line (all must verify).
    #[arg(short = 'b', long, value_name = "FILE")]
    pub(crate) bundle: PathBuf,
    /// Trusted roots: one JSON root, or the JSON Lines `gh attestation trusted-root` writes.
    #[arg(long, value_name = "FILE")]
    pub(crate) custom_trusted_root: PathBuf,
    /// The repository the artifact was built from (OWNER/REPO).
    #[arg(short = 'R', long, value_name = "OWNER/REPO")]
    pub(crate) repo: Option<String>,
    /// The owner of the repository the artifact was built from.
    #[arg(short = 'o', long, value_name = "OWNER")]
    pub(crate) owner: Option<String>,
    /// The exact certificate SAN (signer workflow URI with its ref).
    #[arg(long, value_name = "URI")]
    pub(crate) cert_identity: Option<String>,
    /// A regular expression the certificate SAN must match.
    #[arg(short = 'i', long, value_name = "REGEX")]
    pub(crate) cert_identity_regex: Option<String>,
    /// The repository of the signer workflow (OWNER/REPO).
    #[arg(long, value_name = "OWNER/REPO")]
    pub(crate) signer_repo: Option<String>,
    /// The signer workflow, [HOST/]OWNER/REPO/PATH/TO/WORKFLOW; a regular expression matched
    /// from the start of the SAN after https://, as gh does.
    #[arg(long, value_name = "WORKFLOW")]
    pub(crate) signer_workflow: Option<String>,
    /// The OIDC issuer the certificate must name.
    #[arg(long, value_name = "URL", default_value = secretvm_provenance::GITHUB_ACTIONS_ISSUER)]
    pub(crate) cert_oidc_issuer: String,
    /// The exact Source Repository Ref (for example refs/heads/main).
    #[arg(long, value_name = "REF")]
    pub(crate) source_ref: Option<String>,
    /// The exact Source Repository Digest (the commit).
    #[arg(long, value_name = "SHA")]
    pub(crate) source_digest: Option<String>,
    /// The exact Build Signer Digest (the signer workflow's commit).
    #[arg(long, value_name = "SHA")]
    pub(crate) signer_digest: Option<String>,
    /// Fail unless the build ran on a GitHub-hosted runner.
    #[arg(long)]
    pub(crate) deny_self_hosted_runners: bool,
    /// The predicate type the statement must have.
    #[arg(long, value_name = "URI", default_value = secretvm_provenance::SLSA_PROVENANCE_V1)]
    pub(crate) predicate_type: String,
    /// The digest algorithm for artifact files (subjects are matched with it).
    #[arg(short = 'd', long, value_enum, default_value_t = DigestAlg::Sha256)]
    pub(crate) digest_alg: DigestAlg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub(crate) format: OutputFormat,
}

/// `--digest-alg`.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum DigestAlg {
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

/// `--format`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// One line per artifact.
    Text,
    /// A JSON array: per artifact its digest and either the verified results or the error.
    Json,
}

/// Runs `secretvm verify ...`; `Ok(ExitCode::FAILURE)` when an artifact did not verify.
pub(crate) fn run(cmd: Verify) -> Result<ExitCode> {
    match cmd {
        Verify::Provenance(args) => {
            let alg = args.common.digest_alg;
            let items =
                args.artifacts.iter().map(|a| (a.clone(), artifact_digest(a, alg))).collect();
            check_all(&args.common, items)
        }
        Verify::Release(args) => {
            let c = &args.common;
            // The bundle and the root may live in the directory; they are not artifacts.
            let skip: Vec<PathBuf> = [&c.bundle, &c.custom_trusted_root]
                .into_iter()
                .filter_map(|p| p.canonicalize().ok())
                .collect();
            let mut files = Vec::new();
            let mut others = Vec::new();
            for entry in std::fs::read_dir(&args.dir)
                .with_context(|| format!("cannot list {}", args.dir.display()))?
            {
                let entry = entry.with_context(|| format!("cannot list {}", args.dir.display()))?;
                let path = entry.path();
                // Anything but a regular file (a symbolic link, a directory) fails the release
                // rather than being passed over.
                if entry.file_type().is_ok_and(|t| t.is_file()) {
                    if path.canonicalize().is_ok_and(|p| skip.contains(&p)) {
                        continue;
                    }
                    files.push(path);
                } else {
                    others.push(path);
                }
            }
            files.sort();
            others.sort();
            if files.is_empty() && others.is_empty() {
                bail!("{} holds no file to verify", args.dir.display());
            }
            let digests = hash_files_in_parallel(&files, c.digest_alg);
            let mut items: Vec<(String, Result<ArtifactDigest>)> = files
                .iter()
                .zip(digests)
                .map(|(path, digest)| (path.display().to_string(), digest))
                .collect();
            items.extend(others.iter().map(|path| {
                let name = path.display().to_string();
                let err =
                    anyhow::anyhow!("not a regular file: verify release checks regular files only");
                (name, Err(err))
            }));
            check_all(c, items)
        }
    }
}

/// Verifies the bundle for each (name, digest) and prints one line (or one JSON entry) each.
fn check_all(args: &CommonArgs, items: Vec<(String, Result<ArtifactDigest>)>) -> Result<ExitCode> {
    let policy = policy(args);
    let bundle_bytes =
        read_limited(&args.bundle, secretvm_provenance::MAX_BUNDLE_FILE_BYTES, "bundle")?;
    let root_bytes =
        read_limited(&args.custom_trusted_root, secretvm_provenance::MAX_ROOT_FILE_BYTES, "root")?;
    let name = args.bundle.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let bundles = parse_bundles(&bundle_bytes, BundleFormat::from_file_name(name))
        .with_context(|| format!("cannot load the bundle {}", args.bundle.display()))?;
    let roots = parse_trusted_roots(&root_bytes).with_context(|| {
        format!("cannot load the trusted root {}", args.custom_trusted_root.display())
    })?;

    let mut all_ok = true;
    let mut report = Vec::new();
    let mut out = io::stdout().lock();
    for (artifact, digest) in items {
        let outcome: Result<Outcome> = digest.and_then(|digest| {
            let verified = secretvm_provenance::verify(&bundles, &roots, &digest, &policy)?;
            Ok((digest, verified))
        });
        match (&outcome, args.format) {
            (Ok((digest, verified)), OutputFormat::Text) => {
                let first = &verified[0];
                writeln!(
                    out,
                    "verified {artifact} ({digest}): {} bundle(s), repository {}, signer {}, instance {:?}",
                    verified.len(),
                    first.identity.source_repository_uri.as_deref().unwrap_or("-"),
                    first.identity.san.as_deref().unwrap_or("-"),
                    first.instance,
                )?;
            }
            (Err(err), OutputFormat::Text) => {
                all_ok = false;
                eprintln!("secretvm: {artifact}: not verified: {err:#}");
            }
            (Ok((digest, verified)), OutputFormat::Json) => report.push(json!({
                "artifact": artifact,
                "digest": digest.to_string(),
                "verified": true,
                "results": verified,
            })),
            (Err(err), OutputFormat::Json) => {
                all_ok = false;
                let check =
                    err.downcast_ref::<secretvm_provenance::Error>().map(|e| e.check().to_string());
                report.push(json!({
                    "artifact": artifact,
                    "verified": false,
                    "check": check,
                    "error": format!("{err:#}"),
                }));
            }
        }
    }
    if args.format == OutputFormat::Json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    }
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

type Outcome = (ArtifactDigest, Vec<secretvm_provenance::Verified>);

/// The digest of an ARTIFACT argument: itself when written `sha256:`/`sha512:`, else its file's.
fn artifact_digest(artifact: &str, alg: DigestAlg) -> Result<ArtifactDigest> {
    if artifact.starts_with("sha256:") || artifact.starts_with("sha512:") {
        Ok(artifact.parse::<ArtifactDigest>()?)
    } else {
        hash_file(Path::new(artifact), alg)
    }
}

/// Hashes every file once, on as many threads as there are CPUs (at most one per file); the
/// results are in the order of `files`.
fn hash_files_in_parallel(files: &[PathBuf], alg: DigestAlg) -> Vec<Result<ArtifactDigest>> {
    let threads =
        std::thread::available_parallelism().map_or(1, usize::from).min(files.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<Result<ArtifactDigest>>> = files.iter().map(|_| None).collect();
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let digest = hash_file(path, alg);
                    if let Ok(mut done) = done.lock() {
                        done.push((i, digest));
                    }
                }
            });
        }
    });
    for (i, digest) in done.into_inner().unwrap_or_default() {
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(digest);
        }
    }
    files
        .iter()
        .zip(results)
        .map(|(path, r)| {
            r.unwrap_or_else(|| Err(anyhow::anyhow!("{} was not hashed", path.display())))
        })
        .collect()
}

fn policy(args: &CommonArgs) -> Policy {
    let mut policy = match (&args.repo, &args.owner) {
        (Some(repo), _) => Policy::for_repo(repo),
        (None, Some(owner)) => Policy::for_owner(owner),
        // clap requires one of the two; an empty owner is then rejected by the library.
        (None, None) => Policy::for_owner(""),
    };
    policy.signer = if let Some(v) = &args.cert_identity {
        Signer::CertIdentity(v.clone())
    } else if let Some(v) = &args.cert_identity_regex {
        Signer::CertIdentityRegex(v.clone())
    } else if let Some(v) = &args.signer_repo {
        Signer::SignerRepo(v.clone())
    } else if let Some(v) = &args.signer_workflow {
        Signer::SignerWorkflow(v.clone())
    } else {
        Signer::Default
    };
    policy.cert_oidc_issuer = args.cert_oidc_issuer.clone();
    policy.source_ref = args.source_ref.clone();
    policy.source_digest = args.source_digest.clone();
    policy.signer_digest = args.signer_digest.clone();
    policy.deny_self_hosted_runners = args.deny_self_hosted_runners;
    policy.predicate_type = args.predicate_type.clone();
    policy
}

/// Reads a whole file, refusing one larger than `limit` bytes.
fn read_limited(path: &Path, limit: usize, what: &str) -> Result<Vec<u8>> {
    let file =
        File::open(path).with_context(|| format!("cannot open the {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    file.take(cap)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if bytes.len() > limit {
        bail!("the {what} {} is larger than {limit} bytes", path.display());
    }
    Ok(bytes)
}

/// Hashes a file in one streaming pass.
fn hash_file(path: &Path, alg: DigestAlg) -> Result<ArtifactDigest> {
    let mut file =
        File::open(path).with_context(|| format!("cannot open the artifact {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut sha256 = Sha256::new();
    let mut sha512 = Sha512::new();
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read the artifact {}", path.display()))?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        match alg {
            DigestAlg::Sha256 => sha256.update(chunk),
            DigestAlg::Sha512 => sha512.update(chunk),
        }
    }
    let (algorithm, bytes) = match alg {
        DigestAlg::Sha256 => (DigestAlgorithm::Sha256, sha256.finalize().to_vec()),
        DigestAlg::Sha512 => (DigestAlgorithm::Sha512, sha512.finalize().to_vec()),
    };
    Ok(ArtifactDigest::new(algorithm, &bytes)?)
}
