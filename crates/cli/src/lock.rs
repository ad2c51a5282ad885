//! `secretvm lock --check | --update`: the lock file (`yocto/secretvm.lock`) that records what
//! the build's inputs resolved to: each layer repository's commit, the floating SRCREVs
//! resolved to commits (rendered into `build/conf/srcrev-lock.inc` by `secretvm build`), and
//! the id of the builder image a release was built with.
//!
//! `--update` writes the lock canonically (`secretvm_yocto::lock::render`): the repositories'
//! commits from the config; the SRCREVs of the previous lock, replaced with `--resolve` by the
//! current head of each floating SRCREV's branch (`git ls-remote`), then by `--srcrev` entries;
//! and the id of the builder image the current Dockerfile gives when that image exists locally
//! (else the previous id, and a note). `--check` lists every disagreement with
//! the config and exits 1 when there is one; a local builder image whose id differs from the
//! lock's is reported too.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use secretvm_yocto::config::{self, Config};
use secretvm_yocto::lock::{self, Lock, LockedRepo, Srcrev};
use secretvm_yocto::runner::{Engine, Host, checkout, image, preflight};

use crate::build::EngineArg;

/// `secretvm lock`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["check", "update"])))]
pub(crate) struct LockArgs {
    /// List how the lock disagrees with the config (exit 1 if it does).
    #[arg(long)]
    pub(crate) check: bool,
    /// Write the lock from the config, the previous lock and the local builder image.
    #[arg(long)]
    pub(crate) update: bool,
    /// A resolved SRCREV to record, RECIPE:VARIABLE=COMMIT (for example
    /// `linux-yocto-dev:SRCREV_machine=<40 hex>`, as `bitbake -e linux-yocto-dev` shows it).
    #[arg(long, value_name = "RECIPE:VARIABLE=COMMIT", requires = "update")]
    pub(crate) srcrev: Vec<String>,
    /// Pin every floating SRCREV of the config (`[[floating]]`) to its branch's current commit
    /// on its server (`git ls-remote`; needs the network). `--srcrev` entries take precedence.
    #[arg(long, requires = "update")]
    pub(crate) resolve: bool,
    /// The build config.
    #[arg(long, value_name = "FILE", default_value = "yocto/secretvm.toml")]
    pub(crate) config: PathBuf,
    /// The lock file.
    #[arg(long, value_name = "FILE", default_value = "yocto/secretvm.lock")]
    pub(crate) lock: PathBuf,
    /// The engine whose image store holds the builder image [default: the config's].
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub(crate) engine: Option<EngineArg>,
    /// The base the builder image was built on, as given to `secretvm build --base-image`.
    #[arg(long, value_name = "IMAGE")]
    pub(crate) base_image: Option<String>,
}

/// Runs `secretvm lock`.
#[allow(clippy::print_stderr, clippy::print_stdout)]
pub(crate) fn run(args: &LockArgs) -> Result<()> {
    let (config, _) = crate::build::read_config(&args.config)?;
    let previous = read_lock(&args.lock)?;
    let image = builder_image_id(args, &config)?;
    if args.update {
        let mut srcrevs = previous.as_ref().map(|l| l.srcrevs.clone()).unwrap_or_default();
        if args.resolve {
            let host = Host::from_env();
            for f in &config.floating {
                let commit = checkout::remote_head(&f.url, &f.branch, &host)?;
                eprintln!(
                    "{}:{} = {commit} (head of {} at {})",
                    f.recipe, f.variable, f.branch, f.url
                );
                pin(
                    &mut srcrevs,
                    Srcrev { recipe: f.recipe.clone(), variable: f.variable.clone(), commit },
                );
            }
        }
        for entry in &args.srcrev {
            pin(&mut srcrevs, parse_srcrev(entry)?);
        }
        let builder_image = match (&image, previous.as_ref().and_then(|l| l.builder_image.clone()))
        {
            (Some(id), _) => Some(id.clone()),
            (None, kept) => {
                eprintln!(
                    "note: no local builder image for the current Dockerfile; {}",
                    if kept.is_some() { "keeping the lock's id" } else { "the lock records none" }
                );
                kept
            }
        };
        let repos = config
            .repos
            .iter()
            .map(|r| LockedRepo { name: r.name.clone(), commit: r.commit.clone() })
            .collect();
        srcrevs.sort();
        let new = Lock { builder_image, repos, srcrevs };
        let rendered = lock::render(&new);
        // The rendered text must read back as what was meant (values are validated on parse).
        let reread = lock::parse(&args.lock.display().to_string(), &rendered)?;
        if reread != new {
            bail!("the lock did not read back as written");
        }
        secretvm_artifact::hashed::write_bytes(&args.lock, rendered.as_bytes())
            .with_context(|| format!("cannot write {}", args.lock.display()))?;
        eprintln!(
            "wrote {}: {} repositories, {} SRCREVs, builder image {}",
            args.lock.display(),
            reread.repos.len(),
            reread.srcrevs.len(),
            reread.builder_image.as_deref().unwrap_or("(none)")
        );
        return Ok(());
    }
    let Some(current) = previous else {
        bail!("there is no lock at {}: create it with `--update`", args.lock.display());
    };
    let mut problems: Vec<String> =
        lock::check(&config, &current).iter().map(ToString::to_string).collect();
    if let (Some(local), Some(locked)) = (&image, &current.builder_image)
        && local != locked
    {
        problems.push(format!(
            "the local builder image for the current Dockerfile is {local}, the lock records \
             {locked}"
        ));
    }
    if problems.is_empty() {
        println!("{} agrees with {}", args.lock.display(), args.config.display());
        return Ok(());
    }
    bail!(
        "{} disagrees with {}:\n  {}\nrun `cargo xtask lock --update` after checking the change",
        args.lock.display(),
        args.config.display(),
        problems.join("\n  ")
    );
}

/// Records `new`, replacing what `srcrevs` had for its recipe and variable.
fn pin(srcrevs: &mut Vec<Srcrev>, new: Srcrev) {
    srcrevs.retain(|s| (&s.recipe, &s.variable) != (&new.recipe, &new.variable));
    srcrevs.push(new);
}

fn read_lock(path: &Path) -> Result<Option<Lock>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(lock::parse(&path.display().to_string(), &text)?)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// `RECIPE:VARIABLE=COMMIT`; the commit is validated when the rendered lock is parsed back.
fn parse_srcrev(s: &str) -> Result<Srcrev> {
    let parsed = s.split_once('=').and_then(|(name, commit)| {
        let (recipe, variable) = name.split_once(':')?;
        Some(Srcrev { recipe: recipe.into(), variable: variable.into(), commit: commit.into() })
    });
    match parsed {
        Some(srcrev) if !srcrev.recipe.is_empty() && srcrev.variable.starts_with("SRCREV") => {
            Ok(srcrev)
        }
        _ => bail!(
            "--srcrev {s:?}: expected RECIPE:VARIABLE=COMMIT, VARIABLE being SRCREV or SRCREV_<name>"
        ),
    }
}

/// The local id of the builder image the current Dockerfile gives, if that image exists.
fn builder_image_id(args: &LockArgs, config: &Config) -> Result<Option<String>> {
    let host = Host::from_env();
    let wanted = args.engine.map_or(config.container.engine, config::Engine::from);
    let engine = match preflight::resolve_engine(wanted, &host) {
        Ok(Engine::Native) | Err(_) => return Ok(None),
        Ok(engine) => engine,
    };
    let dockerfile = fs::read(&config.container.dockerfile)
        .with_context(|| format!("cannot read {}", config.container.dockerfile))?;
    let base = args.base_image.clone().unwrap_or_else(|| config.container.base_image.clone());
    let tag = image::tag(&dockerfile, &[("BASE_IMAGE".to_owned(), base)]);
    Ok(image::id(engine, &host, &tag)?)
}
