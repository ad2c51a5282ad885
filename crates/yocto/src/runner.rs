//! Running things: bitbake in the builder container (docker, podman) or on the host (native),
//! the builder image build, git for the layer checkouts, and the checks before a build.
//! This module and its children are the only library code of the workspace that starts
//! processes (tidy enforces it), and `process` holds the one function that calls
//! `Command::new`.
//!
//! The command line is built purely: an [`Invocation`] (the command inside the builder, its
//! working directory, mounts, environment and user) and an [`Engine`] give a [`Spawn`] (program,
//! arguments, environment, working directory), golden-tested per engine. Then a [`Runner`]
//! runs it: [`EngineRunner`] for real, streaming each output line to a callback and into a raw
//! log file; [`Recording`] for tests.
//!
//! Rules every engine follows:
//! - The build never runs as uid 0 ([`Error::Root`]): oe-core's sanity check refuses root.
//! - No TTY and no standard input: bitbake's knotty UI then prints plain lines, which
//!   [`crate::progress`] parses. The one exception is `secretvm shell`
//!   ([`EngineRunner::attach`]), whose command is attached to the caller's terminal.
//! - Only the variables of [`ENV_ALLOWLIST`] pass from the host, plus the fixed [`FIXED_ENV`];
//!   native runs also get `PATH` and `HOME` ([`NATIVE_ENV`]) and nothing else. The engines get
//!   the host values by name only (`-e NAME`, the value set in the engine client's own
//!   environment), so a proxy URL with credentials never appears on a command line that any
//!   user can read in the process list; the fixed values are written out (`-e NAME=value`).
//! - docker and podman run `--platform linux/amd64 --rm --user <uid>:<gid>`; rootless podman
//!   adds `--userns=keep-id` (the files the build writes belong to the caller), and on hosts whose
//!   cgroups are v1 or hybrid it selects `runc` and the `cgroupfs` manager, because its default
//!   runtime (crun) refuses hybrid cgroups ([`cgroup_mode`] decides from `/proc/self/mountinfo`).
//! - Containers run with `--security-opt=no-new-privileges`: nothing in a build needs a setuid
//!   program, and with it no program can gain privileges the build user lacks.
//! - bitbake must be able to cut the network of its tasks ([`isolation`]): the container's
//!   `/etc/passwd` and `/etc/group` are the build directory's [`ACCOUNT_FILES`] (the image has
//!   no account for the build user, and bitbake isolates only listed uids), and a Docker
//!   container that has the network gets `--cap-add=SYS_ADMIN`, the one way to make Docker's
//!   default seccomp profile allow `unshare`. The capability goes to the bounding set only: the
//!   build user's permitted and effective sets stay empty, and `no-new-privileges` keeps a
//!   setuid program from raising them.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{Cache, Config, Machine};

pub mod checkout;
mod error;
pub mod image;
pub mod isolation;
pub mod preflight;
mod process;
pub mod signing;

pub use error::{Error, Result};
pub use process::Host;

/// The platform the builder runs as.
pub const PLATFORM: &str = "linux/amd64";

/// Host variables passed into the build when they are set, in this order. `BB_NO_NETWORK`
/// (in oe-core's own passthrough list) makes an offline build fail in `do_fetch` instead of in
/// the sanity check's connectivity test; it forbids fetching and changes no output.
pub const ENV_ALLOWLIST: &[&str] = &[
    "MACHINES",
    "BB_NUMBER_THREADS",
    "PARALLEL_MAKE",
    "BB_NO_NETWORK",
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];

/// Host variables a native build also needs: the host's tools and the user's home.
pub const NATIVE_ENV: &[&str] = &["PATH", "HOME"];

/// Variables every build gets with these values: bitbake refuses a locale other than
/// en_US.UTF-8 (C.UTF-8 included). In a container the build user has no home, so
/// [`build_env`] also sets `HOME` to the container's `/tmp`.
pub const FIXED_ENV: &[(&str, &str)] = &[("LANG", "en_US.UTF-8"), ("LC_ALL", "en_US.UTF-8")];

/// The numeric user and group the build runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    /// The user id; never 0.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
}

impl User {
    /// The user and group of this process.
    pub fn current() -> User {
        User { uid: rustix::process::getuid().as_raw(), gid: rustix::process::getgid().as_raw() }
    }
}

/// A host directory made visible inside the builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The absolute host path.
    pub host: PathBuf,
    /// The absolute path inside the container.
    pub container: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// The container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The engine's default (bitbake fetches sources).
    Default,
    /// No network (`--network=none`).
    None,
}

/// What to run inside the builder. Built by the caller, turned into a command line by
/// [`Engine::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The command and its arguments inside the builder.
    pub argv: Vec<String>,
    /// The working directory inside the builder (absolute; for a native run it is mapped back
    /// to the host through [`Invocation::mounts`]).
    pub workdir: String,
    /// Host directories to mount, in order.
    pub mounts: Vec<Mount>,
    /// The environment, already filtered ([`build_env`]).
    pub env: Vec<(String, String)>,
    /// Who runs it.
    pub user: User,
    /// The network.
    pub network: Network,
}

/// How the host's cgroups are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only the unified hierarchy (cgroup v2) at `/sys/fs/cgroup`.
    Unified,
    /// cgroup v1 controllers are mounted (v1 only, or hybrid with v2 beside them).
    Legacy,
}

/// Decides the cgroup mode from the text of `/proc/self/mountinfo`: cgroup v2 mounted at
/// `/sys/fs/cgroup` is [`CgroupMode::Unified`]; any mounted v1 hierarchy makes it
/// [`CgroupMode::Legacy`] (whether or not v2 is also mounted, as on hybrid hosts).
pub fn cgroup_mode(mountinfo: &str) -> CgroupMode {
    // mountinfo: "id parent major:minor root mountpoint options [optional...] - fstype source opts".
    let mut v1 = false;
    let mut v2_root = false;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else { continue };
        let mount_point = fields.get(4).copied().unwrap_or("");
        match fields.get(dash + 1).copied() {
            Some("cgroup") => v1 = true,
            Some("cgroup2") if mount_point == "/sys/fs/cgroup" => v2_root = true,
            _ => {}
        }
    }
    if v2_root && !v1 { CgroupMode::Unified } else { CgroupMode::Legacy }
}

/// The engine a build runs on, resolved (see [`preflight::resolve_engine`] for `auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The docker CLI and daemon.
    Docker,
    /// Podman.
    Podman {
        /// The host's cgroups, which decide the runtime flags.
        cgroup: CgroupMode,
        /// Podman runs as a normal user (then `--userns=keep-id` maps the caller's uid into the
        /// container; rootful podman refuses that option, and needs no mapping).
        rootless: bool,
    },
    /// The host itself, with a cleared environment.
    Native,
}

/// A process to start: program, arguments, environment and working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spawn {
    /// The program, looked up on the host's `PATH`.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// `Some`: the environment is cleared and set to exactly these; `None`: inherited.
    pub env: Option<Vec<(String, String)>>,
    /// Variables set on top of the environment.
    pub set: Vec<(String, String)>,
    /// The working directory; `None`: inherited.
    pub cwd: Option<PathBuf>,
}

impl fmt::Display for Spawn {
    /// A shell-quoted equivalent, for messages and goldens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = Vec::new();
        if let Some(cwd) = &self.cwd {
            words.push(format!("cd {} &&", quote(&cwd.to_string_lossy())));
        }
        if let Some(env) = &self.env {
            words.push("env -i".to_owned());
            words.extend(env.iter().map(|(k, v)| quote(&format!("{k}={v}"))));
        }
        words.extend(self.set.iter().map(|(k, v)| quote(&format!("{k}={v}"))));
        words.push(quote(&self.program));
        words.extend(self.args.iter().map(|a| quote(a)));
        f.write_str(&words.join(" "))
    }
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn quote(s: &str) -> String {
    let plain =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
    if plain { s.to_owned() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

impl Engine {
    /// The engine's program, `None` for native.
    pub fn program(self) -> Option<&'static str> {
        match self {
            Engine::Docker => Some("docker"),
            Engine::Podman { .. } => Some("podman"),
            Engine::Native => None,
        }
    }

    /// Options that go before podman's subcommand.
    pub fn global_args(self) -> Vec<String> {
        match self {
            Engine::Podman { cgroup: CgroupMode::Legacy, .. } => {
                ["--runtime", "runc", "--cgroup-manager=cgroupfs"].map(String::from).to_vec()
            }
            _ => Vec::new(),
        }
    }

    /// The command line that runs `inv` in `image` (ignored for native), with `engine_args`
    /// (the user's extra `run` options, such as `--ulimit`) before the image. Refuses uid 0
    /// and values that cannot be passed safely.
    pub fn plan(self, inv: &Invocation, image: &str, engine_args: &[String]) -> Result<Spawn> {
        self.plan_streams(inv, image, engine_args, None)
    }

    /// As [`Engine::plan`], for a command attached to the caller's standard streams
    /// (`secretvm shell`): the engine keeps standard input open (`--interactive`) and, with
    /// `tty` (the caller's input and output are a terminal), gives the command a terminal
    /// (`--tty`). A native command inherits the streams as they are.
    pub fn plan_attached(
        self,
        inv: &Invocation,
        image: &str,
        engine_args: &[String],
        tty: bool,
    ) -> Result<Spawn> {
        self.plan_streams(inv, image, engine_args, Some(tty))
    }

    /// `attached`: `None` for a build's run (no input, no terminal), `Some(tty)` for an
    /// attached one.
    fn plan_streams(
        self,
        inv: &Invocation,
        image: &str,
        engine_args: &[String],
        attached: Option<bool>,
    ) -> Result<Spawn> {
        check(inv)?;
        let Some(program) = self.program() else {
            let cwd = host_path(&inv.workdir, &inv.mounts)?;
            let (cmd, args) = inv.argv.split_first().ok_or_else(empty_argv)?;
            return Ok(Spawn {
                program: cmd.clone(),
                args: args.to_vec(),
                env: Some(inv.env.clone()),
                set: Vec::new(),
                cwd: Some(cwd),
            });
        };
        let mut args = self.global_args();
        args.extend(["run", "--rm", "--platform", PLATFORM].map(String::from));
        if let Some(tty) = attached {
            args.push("--interactive".into());
            if tty {
                args.push("--tty".into());
            }
        }
        args.push("--user".into());
        args.push(format!("{}:{}", inv.user.uid, inv.user.gid));
        if let Engine::Podman { rootless: true, .. } = self {
            args.push("--userns=keep-id".into());
        }
        args.push("--security-opt=no-new-privileges".into());
        match inv.network {
            Network::None => args.push("--network=none".into()),
            // Docker's default seccomp profile allows unshare only with CAP_SYS_ADMIN, and
            // bitbake needs it to cut each task's network (see `isolation`).
            Network::Default if self == Engine::Docker => {
                args.push("--cap-add=SYS_ADMIN".into());
            }
            Network::Default => {}
        }
        let mut set = Vec::new();
        for (k, v) in &inv.env {
            args.push("-e".into());
            let fixed = k == "HOME" || FIXED_ENV.iter().any(|(name, _)| name == k);
            if fixed {
                args.push(format!("{k}={v}"));
            } else {
                // By name: the client passes its own value, which stays off the command line.
                args.push(k.clone());
                set.push((k.clone(), v.clone()));
            }
        }
        for m in &inv.mounts {
            let host = m.host.to_str().unwrap_or_default();
            args.push("-v".into());
            args.push(format!("{host}:{}{}", m.container, if m.read_only { ":ro" } else { "" }));
        }
        args.push("-w".into());
        args.push(inv.workdir.clone());
        args.extend(engine_args.iter().cloned());
        if image.is_empty() || image.starts_with('-') || image.contains(char::is_whitespace) {
            return Err(Error::Invalid {
                what: "the builder image".into(),
                found: image.to_owned(),
                expected: "an image name or id",
            });
        }
        args.push(image.to_owned());
        args.extend(inv.argv.iter().cloned());
        Ok(Spawn { program: program.to_owned(), args, env: None, set, cwd: None })
    }
}

fn empty_argv() -> Error {
    Error::Invalid { what: "the command".into(), found: String::new(), expected: "a program" }
}

/// Checks everything that is the same for every engine.
fn check(inv: &Invocation) -> Result<()> {
    if inv.user.uid == 0 {
        return Err(Error::Root);
    }
    if inv.argv.first().is_none_or(|p| p.is_empty()) {
        return Err(empty_argv());
    }
    for (k, v) in &inv.env {
        let name_ok = k.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !name_ok {
            return Err(Error::Invalid {
                what: "an environment variable name".into(),
                found: k.clone(),
                expected: "letters, digits and '_', not starting with a digit",
            });
        }
        if v.contains('\0') {
            return Err(Error::Invalid {
                what: format!("the value of {k}"),
                found: v.clone(),
                expected: "no NUL byte",
            });
        }
    }
    let absolute = |p: &str| p.starts_with('/') && !p.contains([':', ',', '\0', '\n']);
    if !absolute(&inv.workdir) {
        return Err(Error::Invalid {
            what: "the working directory".into(),
            found: inv.workdir.clone(),
            expected: "an absolute path without ':' or ','",
        });
    }
    for m in &inv.mounts {
        let host = m.host.to_str().unwrap_or_default();
        if !absolute(host) || !absolute(&m.container) {
            return Err(Error::Invalid {
                what: "a mount".into(),
                found: format!("{}:{}", m.host.display(), m.container),
                expected: "absolute UTF-8 paths without ':' or ',' on both sides",
            });
        }
    }
    Ok(())
}

/// The host path of the container path `path` (such as a task log bitbake names), through
/// the mount with the longest matching container path; `None` when no mount contains it.
pub fn to_host_path(path: &str, mounts: &[Mount]) -> Option<PathBuf> {
    let inside = |m: &&Mount| {
        let c = m.container.trim_end_matches('/');
        path == c || path.strip_prefix(c).is_some_and(|rest| rest.starts_with('/'))
    };
    let m = mounts.iter().filter(inside).max_by_key(|m| m.container.len())?;
    let rest = path.get(m.container.trim_end_matches('/').len()..)?.trim_start_matches('/');
    Some(if rest.is_empty() { m.host.clone() } else { m.host.join(rest) })
}

fn host_path(path: &str, mounts: &[Mount]) -> Result<PathBuf> {
    to_host_path(path, mounts).ok_or_else(|| Error::Invalid {
        what: "the working directory".into(),
        found: path.to_owned(),
        expected: "a path under one of the mounts",
    })
}

/// The environment of a build: the allowlisted host variables that are set (in
/// [`ENV_ALLOWLIST`] order), [`NATIVE_ENV`] for a native run, then [`FIXED_ENV`]. Any other
/// host variable is dropped.
pub fn build_env(engine: Engine, host_vars: &[(String, String)]) -> Vec<(String, String)> {
    let from_host = |name: &str| host_vars.iter().find(|(k, _)| k == name).cloned();
    let mut env: Vec<(String, String)> =
        ENV_ALLOWLIST.iter().filter_map(|n| from_host(n)).collect();
    if engine == Engine::Native {
        env.extend(NATIVE_ENV.iter().filter_map(|n| from_host(n)));
    } else {
        env.push(("HOME".into(), "/tmp".into()));
    }
    env.extend(FIXED_ENV.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

/// The bitbake targets of `machines` in order: `mc:<machine>:<target>`.
pub fn bitbake_targets(machines: &[&Machine]) -> Vec<String> {
    machines
        .iter()
        .flat_map(|m| m.targets().into_iter().map(move |t| format!("mc:{}:{t}", m.name)))
        .collect()
}

/// The name bash gives the command of [`in_build_env`] (`$0`), which its messages start with.
const BUILD_ENV_NAME: &str = "builder";

/// Where the command starts in [`in_build_env`]'s argv: after bash, `-c`, the script and its
/// name.
const COMMAND_AT: usize = 4;

/// The command that runs `command` in poky's build environment inside the builder: bash
/// sources poky's `oe-init-build-env` for `build_dir` (both relative to the working
/// directory), which enters the build directory and puts bitbake on `PATH`, then execs
/// `command`, whose words reach it as positional parameters, never through the shell.
pub fn in_build_env(poky: &str, build_dir: &str, command: &[String]) -> Vec<String> {
    let script = format!(
        "source {}/oe-init-build-env {} >/dev/null && exec \"$@\"",
        quote(poky),
        quote(build_dir)
    );
    let mut argv = vec!["bash".to_owned(), "-c".to_owned(), script, BUILD_ENV_NAME.to_owned()];
    argv.extend(command.iter().cloned());
    argv
}

/// The builder's account files: written into the build directory by the caller (the
/// contents are [`account_files`]) and mounted read-only over the image's in every container.
pub const ACCOUNT_FILES: [(&str, &str); 2] =
    [("secretvm-passwd", "/etc/passwd"), ("secretvm-group", "/etc/group")];

/// The contents of [`ACCOUNT_FILES`] for `user`: root, the build user (`builder`, home `/tmp`
/// as [`build_env`] sets it) and nobody, with their groups. bitbake cuts the network of a
/// task only for a uid listed in `/etc/passwd` ([`isolation`]), and the image lists no
/// account for the person building; the image's system accounts are left out, since no build
/// step runs as them.
pub fn account_files(user: User) -> [String; 2] {
    let mut passwd = vec!["root:x:0:0:root:/root:/bin/bash".to_owned()];
    let mut group = vec!["root:x:0:".to_owned()];
    passwd.push(format!("builder:x:{}:{}:secretvm build user:/tmp:/bin/bash", user.uid, user.gid));
    if user.gid != 0 {
        group.push(format!("builder:x:{}:", user.gid));
    }
    if user.uid != NOBODY {
        passwd.push(format!("nobody:x:{NOBODY}:{NOBODY}:nobody:/nonexistent:/usr/sbin/nologin"));
    }
    if user.gid != NOBODY {
        group.push(format!("nogroup:x:{NOBODY}:"));
    }
    [passwd, group].map(|lines| lines.join("\n") + "\n")
}

/// The overflow uid and gid, `nobody` and `nogroup`.
const NOBODY: u32 = 65534;

/// The mounts of a build: the workspace at the config's workdir, and the team caches that are
/// absolute host paths at the same path (so the paths written into `conf/auto.conf` hold on
/// both sides).
pub fn build_mounts(config: &Config, workspace: &Path) -> Vec<Mount> {
    let mut mounts = vec![Mount {
        host: workspace.to_path_buf(),
        container: config.workdir.clone(),
        read_only: false,
    }];
    let Cache { dl_dir, sstate_dir, .. } = &config.cache;
    for dir in [dl_dir, sstate_dir].into_iter().flatten() {
        if dir.starts_with('/') {
            mounts.push(Mount { host: dir.into(), container: dir.clone(), read_only: false });
        }
    }
    mounts
}

/// The invocation of a bitbake build of `machines` (all targets, in declared order), with
/// `extra` bitbake options (such as `-k`) before the targets.
pub fn build_invocation(
    config: &Config,
    workspace: &Path,
    machines: &[&Machine],
    extra: &[String],
    engine: Engine,
    user: User,
    host_vars: &[(String, String)],
) -> Invocation {
    let mut command = vec!["bitbake".to_owned()];
    command.extend(extra.iter().cloned());
    command.extend(bitbake_targets(machines));
    invocation(config, workspace, &command, engine, user, host_vars)
}

/// The invocation of `secretvm shell`: `command` (an interactive `bash` when empty) in the
/// build environment, with the build's mounts, user and environment, plus the host's `TERM`
/// (a terminal program needs it; no build reads it). The network is the engine's default, as
/// in a build's fetch run; [`without_network`] gives the build run's.
pub fn shell_invocation(
    config: &Config,
    workspace: &Path,
    command: &[String],
    engine: Engine,
    user: User,
    host_vars: &[(String, String)],
) -> Invocation {
    let bash = ["bash".to_owned()];
    let command = if command.is_empty() { &bash[..] } else { command };
    let mut inv = invocation(config, workspace, command, engine, user, host_vars);
    if let Some(term) = host_vars.iter().find(|(k, _)| k == "TERM") {
        inv.env.push(term.clone());
    }
    inv
}

fn invocation(
    config: &Config,
    workspace: &Path,
    command: &[String],
    engine: Engine,
    user: User,
    host_vars: &[(String, String)],
) -> Invocation {
    let poky = config.repo("poky").map_or("yocto/poky", |r| r.path.as_str());
    let mut mounts = build_mounts(config, workspace);
    if engine != Engine::Native {
        let build_dir = workspace.join(&config.build_dir);
        mounts.extend(ACCOUNT_FILES.iter().map(|(name, path)| Mount {
            host: build_dir.join(name),
            container: (*path).to_owned(),
            read_only: true,
        }));
    }
    Invocation {
        argv: in_build_env(poky, &config.build_dir, command),
        workdir: config.workdir.clone(),
        mounts,
        env: build_env(engine, host_vars),
        user,
        network: Network::Default,
    }
}

/// `inv` as a build's second run has it: `BB_NO_NETWORK=1`, so bitbake's fetcher refuses any
/// download, and, in a container, no network at all (`--network=none`) unless the team caches
/// of `cache` live on the network ([`Cache::needs_network`]).
pub fn without_network(mut inv: Invocation, cache: &Cache) -> Invocation {
    inv.env.retain(|(k, _)| k != "BB_NO_NETWORK");
    inv.env.push(("BB_NO_NETWORK".to_owned(), "1".to_owned()));
    if !cache.needs_network() {
        inv.network = Network::None;
    }
    inv
}

/// Which run of a build a [`Step`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `bitbake --runall=fetch`, with the network.
    Fetch,
    /// The build, with `BB_NO_NETWORK=1` and, in a container, no network.
    Build,
    /// The one run of `--online`, with the network.
    Online,
}

impl Phase {
    /// `fetch`, `build` or `online`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Fetch => "fetch",
            Phase::Build => "build",
            Phase::Online => "online",
        }
    }

    /// The raw log of this run, in the build directory: the fetch run has its own, so the
    /// build's log holds only the build.
    pub fn log_file(self) -> &'static str {
        match self {
            Phase::Fetch => "secretvm-bitbake-fetch.log",
            Phase::Build | Phase::Online => "secretvm-bitbake.log",
        }
    }
}

/// One bitbake run of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Which run.
    pub phase: Phase,
    /// What runs.
    pub invocation: Invocation,
}

/// Where bitbake's options start in [`build_invocation`]'s command: after bash, `-c`, the
/// script, its name and `bitbake`.
const BITBAKE_ARGS_AT: usize = COMMAND_AT + 1;

/// The bitbake runs of a build whose single run would be `inv` ([`build_invocation`]).
///
/// By default there are two. `fetch` runs `bitbake --runall=fetch` on the same targets with
/// the network: every source of every recipe the targets need, checked against its pinned
/// checksum or commit into DL_DIR. `build` then runs the targets with `BB_NO_NETWORK=1`, so
/// bitbake's fetcher refuses any download, and, in a container, with no network at all
/// (`--network=none`), so a task that downloads by other means (a compiler driver, a
/// package manager) fails instead of making the output depend on what a server sent. Team
/// caches that live on the network ([`Cache::needs_network`]) keep the container's network
/// for the build; the fetcher stays off, and a remote sstate mirror is reached through
/// `SSTATE_MIRROR_ALLOW_NETWORK`, which [`crate::conf::auto_conf`] sets. A native build
/// cannot take the network away: it gets `BB_NO_NETWORK=1` only.
///
/// With `online` there is one run, `inv` itself, as upstream's build did: no source is
/// downloaded that a shared sstate cache covers, and nothing proves that no task downloads.
pub fn build_steps(inv: Invocation, cache: &Cache, online: bool) -> Vec<Step> {
    if online {
        return vec![Step { phase: Phase::Online, invocation: inv }];
    }
    let mut fetch = inv.clone();
    let at = BITBAKE_ARGS_AT.min(fetch.argv.len());
    fetch.argv.insert(at, "--runall=fetch".to_owned());
    vec![
        Step { phase: Phase::Fetch, invocation: fetch },
        Step { phase: Phase::Build, invocation: without_network(inv, cache) },
    ]
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl Exit {
    /// Exit status 0.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit status {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// Runs invocations.
pub trait Runner {
    /// Runs `inv`, calls `on_line` with each line it prints (stdout and stderr, without the
    /// line ending), keeps the raw output in `log`, and returns how it ended; a non-zero exit is
    /// not an error here (bitbake's failures are read from its output).
    fn run(&mut self, inv: &Invocation, log: &Path, on_line: &mut dyn FnMut(&str)) -> Result<Exit>;
}

/// Runs invocations with a real engine.
#[derive(Debug, Clone)]
pub struct EngineRunner {
    /// The engine.
    pub engine: Engine,
    /// The builder image (tag or id); unused for native.
    pub image: String,
    /// Extra `run` options for the engine, before the image.
    pub engine_args: Vec<String>,
    /// Where programs are found.
    pub host: Host,
}

impl Runner for EngineRunner {
    fn run(&mut self, inv: &Invocation, log: &Path, on_line: &mut dyn FnMut(&str)) -> Result<Exit> {
        self.native_user(inv)?;
        let spawn = self.engine.plan(inv, &self.image, &self.engine_args)?;
        Ok(process::stream(&spawn, &self.host, None, Some(log), on_line)?.0)
    }
}

impl EngineRunner {
    /// Runs `inv` attached to this process's standard input, output and error
    /// ([`Engine::plan_attached`]) and returns how it ended: `secretvm shell`. Nothing is
    /// logged or parsed.
    pub fn attach(&self, inv: &Invocation, tty: bool) -> Result<Exit> {
        self.native_user(inv)?;
        let spawn = self.engine.plan_attached(inv, &self.image, &self.engine_args, tty)?;
        process::attached(&spawn, &self.host)
    }

    /// A native run cannot switch users.
    fn native_user(&self, inv: &Invocation) -> Result<()> {
        if self.engine == Engine::Native && inv.user != User::current() {
            return Err(Error::Invalid {
                what: "the build user of a native build".into(),
                found: format!("{}:{}", inv.user.uid, inv.user.gid),
                expected: "the calling user (a native build cannot switch users)",
            });
        }
        Ok(())
    }
}

/// A runner for tests: records each invocation with its log path, feeds `output` to the
/// callback and returns `exit`; it starts nothing and writes nothing.
#[derive(Debug, Clone)]
pub struct Recording {
    /// What was run, in order.
    pub invocations: Vec<(Invocation, PathBuf)>,
    /// The lines every run "prints".
    pub output: Vec<String>,
    /// How every run "ends".
    pub exit: Exit,
}

impl Default for Recording {
    fn default() -> Self {
        Recording { invocations: Vec::new(), output: Vec::new(), exit: Exit::Code(0) }
    }
}

impl Runner for Recording {
    fn run(&mut self, inv: &Invocation, log: &Path, on_line: &mut dyn FnMut(&str)) -> Result<Exit> {
        check(inv)?;
        self.invocations.push((inv.clone(), log.to_path_buf()));
        for line in &self.output {
            on_line(line);
        }
        Ok(self.exit)
    }
}

#[cfg(test)]
mod tests;
