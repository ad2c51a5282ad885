//! `secretvm build`: the release, from pinned inputs to `artifacts/` and its manifest.
//!
//! `--machine` and `--artifact` select part of the release (`Config::select`): bitbake gets
//! only the targets of the selected artifacts, and only they are collected.
//!
//! Without `--from-deploy` it runs the whole build from the workspace (the current directory):
//! resolve the container engine, run the preflight checks (all problems at once, each saying
//! what to do), check out every layer repository at its pinned commit, regenerate the bitbake
//! configuration (`build/conf/`: poky's templates, then `auto.conf`, the multiconfigs, the
//! BBLAYERS and the SRCREV include from the lock file), make the builder image from an empty
//! context, check that bitbake can cut the network of its tasks in the builder
//! (`runner::isolation`), and run bitbake through the runner with a progress display: first
//! `--runall=fetch` with the network (raw output in `build/secretvm-bitbake-fetch.log`), then
//! the build with `BB_NO_NETWORK=1` and no network in the container (`runner::build_steps`;
//! raw output in `build/secretvm-bitbake.log`), or one run with the network for `--online`.
//! Then, as with `--from-deploy BUILD_DIR` (the post-bitbake
//! steps only, for CI and for users who drive bitbake themselves): collect the selected
//! machines' artifacts through the deploy links, make the ISOs, GCP tarballs and the
//! encrypted-fs disk, and write `sha256sum.txt`, `digest.txt` and `manifest.json` (see
//! `secretvm_yocto::collect`).
//!
//! The git revision is not computed here: `cargo xtask build` passes `git rev-parse HEAD`
//! (with `-dirty` when tracked files differ from it) as `--git-revision`; without the flag the
//! manifest records `null`. The lock file's SHA-256 is recorded when the file exists.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use secretvm_yocto::config::{self, Config};
use secretvm_yocto::lock::Mismatch;
use secretvm_yocto::runner::preflight::{self, MIN_FREE_BYTES, Preflight};
use secretvm_yocto::runner::{
    self, Engine, EngineRunner, Host, Phase, User, checkout, image, isolation,
};

/// The build config read when `--config` is not given.
const DEFAULT_CONFIG: &str = "yocto/secretvm.toml";

/// The lock file read when `--lock` is not given (recorded only if it exists).
const DEFAULT_LOCK: &str = "yocto/secretvm.lock";

/// `secretvm build [--from-deploy BUILD_DIR] [--machine NAME]... [--artifact NAME]...`.
#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// Skip bitbake: collect from this existing bitbake build directory (the one holding
    /// `tmp-<machine>-glibc/`).
    #[arg(
        long,
        value_name = "BUILD_DIR",
        conflicts_with_all = ["engine", "user", "base_image", "build_dir", "from_scratch", "online"]
    )]
    pub(crate) from_deploy: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) setup: Setup,
    /// Only this artifact, such as `bzImage` (repeatable; all by default): bitbake builds only
    /// the targets the named artifacts need, and only they are collected. `--artifact bzImage
    /// --artifact initramfs.cpio.gz --artifact ovmf.fd` is the boot chain the launch
    /// measurements come from.
    #[arg(long = "artifact", value_name = "NAME")]
    pub(crate) artifacts: Vec<String>,
    /// Where the artifacts go.
    #[arg(long, value_name = "DIR", default_value = "artifacts")]
    pub(crate) out: PathBuf,
    /// The git revision the release is built from, recorded in manifest.json.
    #[arg(long, value_name = "REV")]
    pub(crate) git_revision: Option<String>,
    /// Run every task from source: leave out the config's sstate directory, sstate mirrors
    /// and hash server (a `dl_dir` the config names stays shared), in a build directory
    /// without an earlier build's `tmp-*` or `sstate-cache` (refused otherwise). The second
    /// build of `cargo xtask repro-check`.
    #[arg(long)]
    pub(crate) from_scratch: bool,
    /// Run bitbake once, with the network, as upstream's build did. By default bitbake first
    /// fetches every source the targets need (`--runall=fetch`) and then builds with
    /// `BB_NO_NETWORK=1` in a container without network, so no task can download; `--online`
    /// skips downloading sources that a shared sstate cache covers, and proves less.
    #[arg(long)]
    pub(crate) online: bool,
}

/// What `secretvm build` and `secretvm shell` take alike: the config, the lock, the machines,
/// and how the builder is set up.
#[derive(Debug, Args)]
pub(crate) struct Setup {
    /// Only this machine (repeatable; all machines of the config by default).
    #[arg(long = "machine", value_name = "NAME")]
    pub(crate) machines: Vec<String>,
    /// The build config.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub(crate) config: PathBuf,
    /// The lock file, whose SRCREVs go into the bitbake configuration (and whose SHA-256 a
    /// build's manifest records) [default: yocto/secretvm.lock, if it exists].
    #[arg(long, value_name = "FILE")]
    pub(crate) lock: Option<PathBuf>,
    /// Where bitbake runs [default: the config's `container.engine`].
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub(crate) engine: Option<EngineArg>,
    /// The build user inside the container as UID:GID [default: the calling user]; bitbake
    /// refuses to run as root, so root must name another user here.
    #[arg(long, value_name = "UID:GID", value_parser = parse_user)]
    pub(crate) user: Option<User>,
    /// Build the builder image FROM this image instead of the config's pinned
    /// `container.base_image` (for a machine that cannot pull it: a base imported from a mirror
    /// or made with debootstrap and `docker import`).
    #[arg(long, value_name = "IMAGE")]
    pub(crate) base_image: Option<String>,
    /// The bitbake build directory, relative to the workspace (a container sees only the
    /// workspace).
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_BUILD_DIR)]
    pub(crate) build_dir: String,
    /// The free disk space the preflight check demands, in GB.
    #[arg(long, value_name = "GB", default_value_t = MIN_FREE_BYTES / 1_000_000_000)]
    pub(crate) min_free_gb: u64,
}

/// Reads and parses the build config `path`; returns it with the name its errors use.
pub(crate) fn read_config(path: &Path) -> Result<(Config, String)> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display().to_string();
    Ok((config::parse(&name, &text)?, name))
}

/// `--engine`: the config's engine names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EngineArg {
    /// Docker if its daemon answers, else podman.
    Auto,
    /// Docker.
    Docker,
    /// Podman.
    Podman,
    /// No container: bitbake runs on this host.
    Native,
}

impl From<EngineArg> for config::Engine {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Auto => config::Engine::Auto,
            EngineArg::Docker => config::Engine::Docker,
            EngineArg::Podman => config::Engine::Podman,
            EngineArg::Native => config::Engine::Native,
        }
    }
}

fn parse_user(s: &str) -> std::result::Result<User, String> {
    let parsed = s
        .split_once(':')
        .and_then(|(u, g)| Some(User { uid: u.parse().ok()?, gid: g.parse().ok()? }));
    match parsed {
        Some(user) if user.uid != 0 => Ok(user),
        Some(_) => Err("uid 0 (bitbake refuses to run as root); name a regular user".into()),
        None => Err(format!("{s:?} is not UID:GID (two numbers)")),
    }
}

/// The builder, ready to run commands: what [`prepare`] set up.
pub(crate) struct Prepared {
    /// Runs commands in the builder image (or on the host, for native).
    pub(crate) runner: EngineRunner,
    /// Who they run as.
    pub(crate) user: User,
    /// The workspace (the current directory).
    pub(crate) workspace: PathBuf,
}

/// Everything before bitbake runs, for `config` already cut down to the selected machines
/// (its multiconfigs are the only ones bitbake parses): resolve the engine, run the preflight
/// checks, read and check the lock, check out the layers, regenerate `conf/` and make the
/// builder image.
#[allow(clippy::print_stderr)]
pub(crate) fn prepare(setup: &Setup, config: &Config, config_text_file: &str) -> Result<Prepared> {
    let workspace = std::env::current_dir().context("cannot read the current directory")?;
    let host = Host::from_env();
    let wanted = setup.engine.map_or(config.container.engine, config::Engine::from);
    let engine = preflight::resolve_engine(wanted, &host)?;
    let user = setup.user.unwrap_or_else(User::current);
    let mounts = runner::build_mounts(config, &workspace);
    let build_dir = workspace.join(&config.build_dir);
    eprintln!("preflight: engine {engine:?}, build user {}:{}", user.uid, user.gid);
    preflight::run(&Preflight {
        engine,
        host: &host,
        user,
        build_dir: &build_dir,
        mounts: &mounts,
        min_free_bytes: setup.min_free_gb.saturating_mul(1_000_000_000),
    })?;

    let lock_path = setup.lock.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_LOCK));
    let lock = match fs::read_to_string(&lock_path) {
        Ok(text) => {
            let lock = secretvm_yocto::lock::parse(&lock_path.display().to_string(), &text)?;
            // A lock without a builder image id still pins the sources; the id is recorded by
            // `secretvm lock --update` after the image is built. A floating SRCREV the lock
            // lacks matters only to the machines whose recipes use it, which the layer then
            // skips with a message naming it; `secretvm lock --check` reports it.
            let mut mismatches = Vec::new();
            for m in secretvm_yocto::lock::check(config, &lock) {
                match m {
                    Mismatch::NoBuilderImage => {}
                    Mismatch::MissingSrcrev { .. } => eprintln!("note: {m}"),
                    _ => mismatches.push(m),
                }
            }
            if !mismatches.is_empty() {
                let list: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
                bail!(
                    "{} disagrees with {config_text_file}:\n  {}\nupdate the lock or the config",
                    lock_path.display(),
                    list.join("\n  ")
                );
            }
            Some(lock)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "note: no lock file at {}: floating SRCREVs are not pinned, and the layer skips \
                 linux-yocto-dev (the tdx kernel) until they are; `cargo xtask lock --update \
                 --resolve` pins them to their branches' heads",
                lock_path.display()
            );
            None
        }
        Err(err) => {
            return Err(err).with_context(|| format!("cannot read {}", lock_path.display()));
        }
    };

    eprintln!("checking out {} layer repositories at their pinned commits", config.repos.len());
    checkout::checkout_all(&workspace, &config.repos, &host)?;
    // bitbake sees the workspace at the config's workdir inside a container, and where it is
    // on a native build.
    let root = if engine == Engine::Native {
        workspace.to_str().context("the workspace path is not UTF-8")?.to_owned()
    } else {
        config.workdir.clone()
    };
    write_conf(config, lock.as_ref(), &workspace, &build_dir, &root)?;
    if engine != Engine::Native {
        // The container's /etc/passwd and /etc/group (see runner::ACCOUNT_FILES).
        let files = runner::ACCOUNT_FILES.iter().zip(runner::account_files(user));
        for ((name, _), text) in files {
            let path = build_dir.join(name);
            secretvm_artifact::hashed::write_bytes(&path, text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    if User::current().uid == 0 {
        // Run as root for another build user: the directory bitbake writes must be theirs.
        give_to(&build_dir, user)?;
    }

    let image = if engine == Engine::Native {
        String::new()
    } else {
        let dockerfile_path = workspace.join(&config.container.dockerfile);
        let dockerfile = fs::read(&dockerfile_path)
            .with_context(|| format!("cannot read {}", dockerfile_path.display()))?;
        let base_image =
            setup.base_image.clone().unwrap_or_else(|| config.container.base_image.clone());
        let base = [("BASE_IMAGE".to_owned(), base_image)];
        let image_log = build_dir.join("secretvm-builder-image.log");
        eprintln!("builder image: {} (log {})", config.container.dockerfile, image_log.display());
        image::ensure(engine, &host, &dockerfile, &base, &[], &image_log, &mut |_| {})?
    };
    let mut runner = EngineRunner { engine, image, engine_args: Vec::new(), host };
    if let Some(signatures) = &config.cache.sstate_signatures {
        sstate_keyring(&mut runner, config, signatures, &workspace, &build_dir, user)?;
    }
    Ok(Prepared { runner, user, workspace })
}

/// Makes the build's own GnuPG home from scratch (`build/secretvm-gnupg`, mode 0700, the
/// build user's) with the builder's gpg, checks it (`runner::signing`) and writes
/// `conf/sstate-signatures.inc` from it. The key files are copied into the home for the
/// import, since a container sees only the workspace; the copies are removed afterwards,
/// whatever happened.
#[allow(clippy::print_stderr)]
fn sstate_keyring(
    runner: &mut EngineRunner,
    config: &Config,
    signatures: &config::SstateSignatures,
    workspace: &Path,
    build_dir: &Path,
    user: User,
) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;

    use secretvm_yocto::conf;
    use secretvm_yocto::runner::signing;
    // bitbake runs gpg through meta-secret's wrapper (GPG_BIN); it is checked with the keyring.
    let layer = config
        .layers
        .iter()
        .map(|l| config.layer_path(l))
        .find(|p| p == "meta-secret" || p.ends_with("/meta-secret"));
    let Some(layer) = layer else {
        bail!(
            "[cache.sstate_signatures] needs the meta-secret layer in the config's layers: its \
             {} is the gpg bitbake signs and verifies sstate with",
            conf::SSTATE_GPG
        );
    };
    let gpg_bin = format!("{layer}/{}", conf::SSTATE_GPG);
    let home = build_dir.join(conf::GNUPG_HOME);
    let rel = format!("{}/{}", config.build_dir, conf::GNUPG_HOME);
    let base =
        runner::shell_invocation(config, workspace, &[], runner.engine, user, &runner.host.vars);
    if home.exists() {
        // An agent an earlier native build left for this home cannot be stopped once its
        // socket is gone.
        signing::stop_agent(runner, &base, &rel, &home)?;
        fs::remove_dir_all(&home).with_context(|| format!("cannot clear {}", home.display()))?;
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&home)
        .with_context(|| format!("cannot create {}", home.display()))?;
    const KEYS: &str = "signers.pgp";
    const SIGN_KEY: &str = "sign-key.pgp";
    let copies: Vec<(&str, &String)> =
        [(KEYS, Some(&signatures.keys)), (SIGN_KEY, signatures.sign_key.as_ref())]
            .into_iter()
            .filter_map(|(name, src)| Some((name, src?)))
            .collect();
    let result = (|| {
        for (name, src) in &copies {
            let src = workspace.join(src);
            secretvm_artifact::hashed::copy_file(&src, &home.join(name))
                .with_context(|| format!("cannot read the key file {}", src.display()))?;
        }
        if User::current().uid == 0 {
            give_to(&home, user)?;
        }
        let keys = format!("{rel}/{KEYS}");
        let sign_key = format!("{rel}/{SIGN_KEY}");
        let files = signing::Files {
            home: &rel,
            keys: &keys,
            sign_key: signatures.sign_key.as_ref().map(|_| sign_key.as_str()),
            gpg_bin: &gpg_bin,
        };
        Ok::<_, anyhow::Error>(signing::prepare(runner, &base, &files, &home, &signatures.signers)?)
    })();
    let sig = format!("{KEYS}.sig");
    for name in copies.iter().map(|(name, _)| *name).chain([sig.as_str()]) {
        let path = home.join(name);
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("warning: cannot remove the copy {}: {e}", path.display());
        }
    }
    let keyring = result?;
    let inc = conf::sstate_signatures_inc(&keyring.valid_sigs, keyring.sign_key.as_deref());
    let path = build_dir.join(conf::SSTATE_SIGNATURES_INC);
    secretvm_artifact::hashed::write_bytes(&path, inc.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "signed sstate: objects are installed only with a good signature by {} (key ids {}){}",
        signatures.signers.join(", "),
        keyring.valid_sigs.join(" "),
        match &keyring.sign_key {
            Some(key) => format!("; this build signs what it writes with {key}"),
            None => String::new(),
        }
    );
    Ok(())
}

/// Runs everything up to and including bitbake for `config`, already cut down to the selected
/// machines and artifacts; returns the build directory to collect from.
#[allow(clippy::print_stderr)]
fn bitbake_stage(args: &BuildArgs, config: &Config, config_text_file: &str) -> Result<PathBuf> {
    let build_dir = std::env::current_dir()
        .context("cannot read the current directory")?
        .join(&config.build_dir);
    if args.from_scratch {
        let left: Vec<String> = fs::read_dir(&build_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n == "sstate-cache" || n.starts_with("tmp"))
            .collect();
        if !left.is_empty() {
            bail!(
                "--from-scratch: {} holds {} from an earlier build, whose tasks bitbake would \
                 reuse; remove it or name a new --build-dir",
                build_dir.display(),
                left.join(", ")
            );
        }
    }
    let Prepared { mut runner, user, workspace } = prepare(&args.setup, config, config_text_file)?;
    // The signing key's copy in the build's GnuPG home is needed only while bitbake runs.
    let _signing_key = config
        .cache
        .sstate_signatures
        .as_ref()
        .and_then(|s| s.sign_key.as_ref())
        .map(|_| SigningKeyCopy(build_dir.join(secretvm_yocto::conf::GNUPG_HOME)));
    let engine = runner.engine;
    let machines: Vec<&config::Machine> = config.machines.iter().collect();
    let inv = runner::build_invocation(
        config,
        &workspace,
        &machines,
        &[],
        engine,
        user,
        &runner.host.vars,
    );
    let targets = runner::bitbake_targets(&machines).len();
    let steps = runner::build_steps(inv, &config.cache, args.online);
    // A run with the network relies on bitbake to keep it from every task but do_fetch;
    // check that it can, in the same builder with the same flags (runner::isolation).
    let networked = |s: &&runner::Step| {
        engine == Engine::Native || s.invocation.network == runner::Network::Default
    };
    if let Some(step) = steps.iter().find(networked) {
        let log = build_dir.join("secretvm-task-network.log");
        isolation::check(&mut runner, engine, &step.invocation, &log)?;
        eprintln!(
            "bitbake cuts the network of every task but do_fetch in the {} run (checked with \
             its own disable_network in the builder)",
            step.phase.name()
        );
    }
    for step in steps {
        let log = build_dir.join(step.phase.log_file());
        let offline_host =
            step.invocation.env.iter().any(|(k, v)| k == "BB_NO_NETWORK" && v == "1");
        let what = match step.phase {
            Phase::Fetch if offline_host => {
                "every source the targets need, already in DL_DIR (BB_NO_NETWORK=1 from the \
                 environment)"
            }
            Phase::Fetch => "every source the targets need, with the network",
            Phase::Online => "with the network (--online)",
            Phase::Build if engine == Engine::Native => {
                "BB_NO_NETWORK=1 (a native build keeps the network)"
            }
            Phase::Build if step.invocation.network == runner::Network::None => {
                "BB_NO_NETWORK=1, no network in the container"
            }
            Phase::Build => "BB_NO_NETWORK=1; the container keeps the network for the team caches",
        };
        eprintln!(
            "bitbake {}: {targets} target{}, {what} (raw output in {})",
            step.phase.name(),
            if targets == 1 { "" } else { "s" },
            log.display()
        );
        let outcome = crate::bitbake::run_bitbake(&mut runner, &step.invocation, &log)?;
        if let Some(report) = outcome.refusal_report(&log) {
            eprintln!("{report}");
        }
        if !outcome.exit.success() {
            eprintln!("{}", outcome.failure_report(&log));
            match step.phase {
                Phase::Fetch if !offline_host => eprintln!(
                    "hint: this run downloads every source: the builder must reach GitHub and \
                     the source mirrors (a proxy goes in https_proxy/http_proxy); to build \
                     offline, set [cache] dl_dir to a filled download directory and \
                     BB_NO_NETWORK=1"
                ),
                Phase::Build if step.invocation.network == runner::Network::None => eprintln!(
                    "hint: every source was fetched and this run has no network, so a task \
                     that downloads outside do_fetch fails here; if `--online` gets past it, \
                     that recipe is not reproducible as it stands"
                ),
                _ => {}
            }
            eprintln!("{}", look_into_it(config, &args.setup, step.phase));
            bail!("bitbake {} failed ({})", step.phase.name(), outcome.exit);
        }
    }
    Ok(build_dir)
}

/// The build's GnuPG home on a builder that signs sstate: when bitbake is done, however it
/// ended, the secret key imported into it is removed (`private-keys-v1.d`), so no copy of it
/// stays in the build directory, which CI systems archive and teams share. The next run
/// imports it again.
struct SigningKeyCopy(PathBuf);

impl Drop for SigningKeyCopy {
    #[allow(clippy::print_stderr)]
    fn drop(&mut self) {
        let keys = self.0.join("private-keys-v1.d");
        match fs::remove_dir_all(&keys) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "warning: cannot remove the signing key's copy {}: {e}; remove it by hand",
                keys.display()
            ),
        }
    }
}

/// The `cargo xtask shell` line that opens the failed run's environment: the same setup
/// ([`Setup::flags`]) for the machines it built, and for the build run its network
/// (`--offline`).
fn look_into_it(config: &Config, setup: &Setup, phase: Phase) -> String {
    let mut words = vec!["cargo xtask shell".to_owned()];
    words.extend(setup.flags(config));
    if phase == Phase::Build {
        words.push("--offline".to_owned());
    }
    format!("to look into it in the same environment: {}", words.join(" "))
}

impl Setup {
    /// These flags as `secretvm shell` takes them, each value shell-quoted, those left at
    /// their defaults left out; the machines are `config`'s (what `--machine` and
    /// `--artifact` selected).
    fn flags(&self, config: &Config) -> Vec<String> {
        let mut words = Vec::new();
        let mut flag =
            |name: &str, value: &str| words.push(format!("{name} {}", runner::quote(value)));
        if self.config != Path::new(DEFAULT_CONFIG) {
            flag("--config", &self.config.to_string_lossy());
        }
        if let Some(lock) = &self.lock {
            flag("--lock", &lock.to_string_lossy());
        }
        for m in &config.machines {
            flag("--machine", &m.name);
        }
        if config.build_dir != config::DEFAULT_BUILD_DIR {
            flag("--build-dir", &config.build_dir);
        }
        if let Some(engine) = self.engine.and_then(|e| clap::ValueEnum::to_possible_value(&e)) {
            flag("--engine", engine.get_name());
        }
        if let Some(user) = self.user {
            flag("--user", &format!("{}:{}", user.uid, user.gid));
        }
        if let Some(base) = &self.base_image {
            flag("--base-image", base);
        }
        if self.min_free_gb != MIN_FREE_BYTES / 1_000_000_000 {
            flag("--min-free-gb", &self.min_free_gb.to_string());
        }
        words
    }
}

/// Changes the owner of `dir` and everything below it (symbolic links themselves, never what
/// they point to) to `user`.
fn give_to(dir: &Path, user: User) -> Result<()> {
    let chown = |path: &Path| {
        std::os::unix::fs::lchown(path, Some(user.uid), Some(user.gid))
            .with_context(|| format!("cannot give {} to {}:{}", path.display(), user.uid, user.gid))
    };
    chown(dir)?;
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            give_to(&entry.path(), user)?;
        } else {
            chown(&entry.path())?;
        }
    }
    Ok(())
}

/// Regenerates `build/conf/` from scratch: poky's `local.conf` and `bblayers.conf` templates
/// (BBLAYERS spliced in), then everything we manage in `auto.conf`, `multiconfig/<name>.conf`
/// and `srcrev-lock.inc`; nothing from an earlier run survives. The layers are listed under
/// `root`, where bitbake sees the workspace.
fn write_conf(
    config: &Config,
    lock: Option<&secretvm_yocto::lock::Lock>,
    workspace: &Path,
    build_dir: &Path,
    root: &str,
) -> Result<()> {
    use secretvm_yocto::conf;
    let poky = config.repo("poky").map_or("yocto/poky", |r| r.path.as_str());
    let templates = workspace.join(poky).join("meta-poky/conf/templates/default");
    let read = |name: &str| {
        let path = templates.join(name);
        fs::read_to_string(&path)
            .with_context(|| format!("cannot read poky's template {}", path.display()))
    };
    let conf_dir = build_dir.join("conf");
    if conf_dir.exists() {
        fs::remove_dir_all(&conf_dir)
            .with_context(|| format!("cannot clear {}", conf_dir.display()))?;
    }
    fs::create_dir_all(conf_dir.join("multiconfig"))
        .with_context(|| format!("cannot create {}", conf_dir.display()))?;
    let mut files = vec![
        ("local.conf".to_owned(), read("local.conf.sample")?),
        (
            "bblayers.conf".to_owned(),
            conf::bblayers_conf(&read("bblayers.conf.sample")?, config, root)?,
        ),
        ("auto.conf".to_owned(), conf::auto_conf(config)),
        ("srcrev-lock.inc".to_owned(), lock.map(conf::srcrev_inc).unwrap_or_default()),
    ];
    for m in &config.machines {
        files.push((format!("multiconfig/{}.conf", m.name), conf::multiconfig_conf(m)));
    }
    for (name, text) in files {
        let path = conf_dir.join(&name);
        secretvm_artifact::hashed::write_bytes(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Runs `secretvm build`.
#[allow(clippy::print_stderr, clippy::print_stdout)]
pub(crate) fn run(args: &BuildArgs) -> Result<()> {
    let (config, config_name) = read_config(&args.setup.config)?;
    let names: Vec<&str> = args.setup.machines.iter().map(String::as_str).collect();
    let artifacts: Vec<&str> = args.artifacts.iter().map(String::as_str).collect();
    let selected = config.select(&names, &artifacts)?;
    let machines: Vec<&config::Machine> = selected.machines.iter().collect();
    let built;
    let build_dir = match &args.from_deploy {
        Some(dir) => dir,
        None => {
            let mut build_config = selected.with_build_dir(&args.setup.build_dir)?;
            if args.from_scratch {
                build_config = build_config.from_scratch();
            }
            built = bitbake_stage(args, &build_config, &config_name)?;
            &built
        }
    };
    let lock_sha256 = lock_sha256(args.setup.lock.as_deref())?;

    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let collected =
        secretvm_yocto::collect::collect(&machines, build_dir, &args.out, &mut |path| {
            eprintln!("writing {}", args.out.join(path).display());
        })?;
    let complete = selected == config;
    let summary = secretvm_yocto::collect::write_manifest(
        &args.out,
        &collected,
        args.git_revision.as_deref(),
        lock_sha256.as_deref(),
        complete,
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
    let manifest = secretvm_yocto::manifest::FILES;
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
fn lock_sha256(lock: Option<&Path>) -> Result<Option<String>> {
    let path = match lock {
        Some(path) => path.to_path_buf(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    /// The failed run's shell line, read back by `secretvm shell`'s own parser, gives the
    /// build's setup: every flag that was set, quoting included, and the machines built.
    #[test]
    #[allow(clippy::disallowed_methods)] // sh splits the line, as a user's shell would.
    fn the_shell_line_parses_back_to_the_builds_setup() {
        let argv = [
            "secretvm",
            "build",
            "--config",
            "my dir/secretvm.toml",
            "--lock",
            "it's.lock",
            "--machine",
            "sev",
            "--build-dir",
            "build-repro",
            "--engine",
            "podman",
            "--user",
            "1000:100",
            "--base-image",
            "debian:bookworm",
            "--min-free-gb",
            "0",
            "--from-scratch",
        ];
        let Command::Build(build) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not a build")
        };
        let text = include_str!("../../../yocto/secretvm.toml");
        let config = config::parse("secretvm.toml", text).unwrap();
        let config = config.select(&["sev"], &[]).unwrap().with_build_dir("build-repro").unwrap();
        let line = look_into_it(&config, &build.setup, Phase::Build);
        let words = line.strip_prefix("to look into it in the same environment: cargo xtask ");
        // The words as a POSIX shell splits them (sh itself, not our quoting).
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\n' {}", words.unwrap()))
            .output()
            .unwrap();
        let split: Vec<String> =
            String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();
        let mut shell_argv = vec!["secretvm".to_owned()];
        shell_argv.extend(split);
        let Command::Shell(shell) = Cli::try_parse_from(&shell_argv).unwrap().command else {
            panic!("not a shell: {shell_argv:?}")
        };
        assert!(shell.offline, "{shell_argv:?}");
        assert!(shell.command.is_empty(), "{shell_argv:?}");
        assert_eq!(format!("{:?}", shell.setup), format!("{:?}", build.setup), "{shell_argv:?}");

        // Defaults stay out of the line.
        let Command::Build(plain) = Cli::try_parse_from(["secretvm", "build"]).unwrap().command
        else {
            panic!("not a build")
        };
        let all = config::parse("secretvm.toml", text).unwrap();
        assert_eq!(
            look_into_it(&all, &plain.setup, Phase::Fetch),
            "to look into it in the same environment: cargo xtask shell --machine tdx \
             --machine sev --machine gcp-tdx"
        );
    }
}
