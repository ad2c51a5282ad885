//! The checks before a build, each with a message that says what to do: the engine is
//! installed and answers, the build user is not root, the build directory's file system has
//! room, every mount source exists (and, unless mounted read-only, is writable by the build
//! user), a native host has the
//! en_US.UTF-8 locale and bitbake's host tools, and no bitbake holds `build/bitbake.lock`.
//! [`run`] returns every problem at once, not the first.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::process::{self, Host};
use super::{CgroupMode, Engine, Error, Mount, Result, Spawn, User, cgroup_mode};
use crate::config;

/// The free space a full build needs on the build directory's file system, in bytes: the
/// upstream README asks for 120 GB or more.
pub const MIN_FREE_BYTES: u64 = 120_000_000_000;

/// Programs a native build needs on `PATH`: the tools of the Yocto host package list for
/// Debian and Ubuntu (yocto/docker/Dockerfile installs the same packages).
pub const NATIVE_TOOLS: &[&str] = &[
    "bash", "chrpath", "cpio", "diffstat", "file", "gawk", "gcc", "g++", "git", "make", "patch",
    "perl", "python3", "socat", "tar", "unzip", "wget", "xz", "zstd", "lz4c",
];

/// Which check a problem comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// The container engine.
    Engine,
    /// The build user.
    User,
    /// Free disk space.
    Disk,
    /// A mount source.
    Mount,
    /// The locale (native).
    Locale,
    /// Host tools (native).
    HostTools,
    /// `build/bitbake.lock`.
    BitbakeLock,
}

/// One failed check and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The check.
    pub check: Check,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn problem(check: Check, message: String) -> Problem {
    Problem { check, message }
}

/// What [`run`] checks.
#[derive(Debug, Clone)]
pub struct Preflight<'a> {
    /// The engine (already resolved).
    pub engine: Engine,
    /// Where programs are found.
    pub host: &'a Host,
    /// Who the build runs as.
    pub user: User,
    /// The bitbake build directory (it may not exist yet; then its nearest existing parent is
    /// measured for free space).
    pub build_dir: &'a Path,
    /// The mounts of the build (for native, the directories the build writes).
    pub mounts: &'a [Mount],
    /// The free space needed, in bytes ([`MIN_FREE_BYTES`] for a full build).
    pub min_free_bytes: u64,
}

/// Runs every check; `Err(Error::Preflight)` lists all problems found.
pub fn run(p: &Preflight<'_>) -> Result<()> {
    let mut problems = Vec::new();
    if let Some(program) = p.engine.program() {
        problems.extend(engine_problem(p.engine, program, p.host));
    }
    if p.user.uid == 0 {
        problems.push(problem(Check::User, Error::Root.to_string()));
    }
    problems.extend(disk_problem(p.build_dir, p.min_free_bytes));
    for m in p.mounts {
        problems.extend(mount_problem(&m.host, p.user, !m.read_only));
    }
    if p.engine == Engine::Native {
        problems.extend(native_problems(p.host));
    }
    problems.extend(lock_problem(&p.build_dir.join("bitbake.lock")));
    if problems.is_empty() { Ok(()) } else { Err(Error::Preflight { problems }) }
}

/// What to install for each engine, and the way out.
fn install_hint(program: &str) -> String {
    let install = match program {
        "docker" => {
            "install Docker (`apt-get install docker.io`) and start its daemon \
                     (`systemctl start docker`; your user must be in the `docker` group)"
        }
        _ => "install podman (`apt-get install podman uidmap`)",
    };
    format!("{install}, or build without a container with `--engine native`")
}

/// The command that asks an engine whether it works.
fn info_spawn(engine: Engine, program: &str) -> Spawn {
    // Docker's server version comes from the daemon; podman's host architecture needs its
    // runtime and storage.
    let field = if engine == Engine::Docker { "{{.ServerVersion}}" } else { "{{.Host.Arch}}" };
    let mut args = engine.global_args();
    args.extend(["info", "--format", field].map(String::from));
    Spawn { program: program.to_owned(), args, env: None, set: Vec::new(), cwd: None }
}

/// Why `program` cannot be used (not on PATH, or its daemon or runtime does not answer), or
/// `None` when it works.
fn engine_unusable(engine: Engine, program: &str, host: &Host) -> Option<String> {
    if host.find(program).is_none() {
        return Some(format!("`{program}` is not on PATH ({})", host.path.to_string_lossy()));
    }
    let spawn = info_spawn(engine, program);
    match process::capture(&spawn, host, None) {
        Ok(c) if c.exit.success() => None,
        Ok(c) => Some(format!(
            "`{spawn}` failed ({}): {}",
            c.exit,
            c.stderr.trim().lines().last().unwrap_or("")
        )),
        Err(e) => Some(e.to_string()),
    }
}

fn engine_problem(engine: Engine, program: &str, host: &Host) -> Option<Problem> {
    let why = engine_unusable(engine, program, host)?;
    Some(problem(Check::Engine, format!("{why}: {}", install_hint(program))))
}

/// Picks the engine for `config::Engine::Auto` (docker if it answers, else podman) and reads
/// the cgroup mode for podman. When none answers, the problem names why for each and the way
/// out.
pub fn resolve_engine(wanted: config::Engine, host: &Host) -> Result<Engine> {
    let rootless = rustix::process::geteuid().as_raw() != 0;
    let podman = || Engine::Podman { cgroup: host_cgroup_mode(), rootless };
    let candidates = match wanted {
        config::Engine::Native => return Ok(Engine::Native),
        config::Engine::Docker => vec![Engine::Docker],
        config::Engine::Podman => vec![podman()],
        config::Engine::Auto => vec![Engine::Docker, podman()],
    };
    let mut reasons = Vec::new();
    for engine in &candidates {
        let program = engine.program().unwrap_or_default();
        match engine_unusable(*engine, program, host) {
            None => return Ok(*engine),
            Some(why) => reasons.push((program, why)),
        }
    }
    let message = match reasons.as_slice() {
        [(program, why)] => format!("{why}: {}", install_hint(program)),
        _ => format!(
            "no container engine is reachable ({}): install Docker (`apt-get install docker.io`, \
             then `systemctl start docker`) or podman (`apt-get install podman uidmap`), or \
             build without a container with `--engine native`",
            reasons.iter().map(|(_, why)| why.as_str()).collect::<Vec<_>>().join("; ")
        ),
    };
    Err(Error::Preflight { problems: vec![problem(Check::Engine, message)] })
}

/// The cgroup mode of this host, from `/proc/self/mountinfo` (unified when it cannot be read).
pub fn host_cgroup_mode() -> CgroupMode {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map_or(CgroupMode::Unified, |text| cgroup_mode(&text))
}

fn disk_problem(build_dir: &Path, min: u64) -> Option<Problem> {
    let dir = build_dir.ancestors().find(|d| d.exists())?;
    match rustix::fs::statvfs(dir) {
        Ok(s) => {
            let free = s.f_bavail.saturating_mul(s.f_frsize);
            (free < min).then(|| {
                problem(
                    Check::Disk,
                    format!(
                        "{} has {} GB free, a full build needs {} GB: free space there, or put \
                         the workspace (or its build directory) on a larger file system",
                        dir.display(),
                        free / 1_000_000_000,
                        min / 1_000_000_000
                    ),
                )
            })
        }
        Err(e) => Some(problem(
            Check::Disk,
            format!("cannot read the free space of {}: {e}", dir.display()),
        )),
    }
}

/// Whether the owner, group and mode bits let `user` write (and enter) a directory. ACLs and
/// supplementary groups are not considered.
pub fn writable_by(user: User, owner: u32, group: u32, mode: u32) -> bool {
    let bits = if user.uid == owner {
        mode >> 6
    } else if user.gid == group {
        mode >> 3
    } else {
        mode
    };
    bits & 0o3 == 0o3
}

fn mount_problem(path: &Path, user: User, write: bool) -> Option<Problem> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            return Some(problem(
                Check::Mount,
                format!("{} cannot be mounted: {e}; create it (`mkdir -p`)", path.display()),
            ));
        }
    };
    if !meta.is_dir() {
        return Some(problem(Check::Mount, format!("{} is not a directory", path.display())));
    }
    (write && !writable_by(user, meta.uid(), meta.gid(), meta.mode())).then(|| {
        problem(
            Check::Mount,
            format!(
                "{} (owner {}:{}, mode {:o}) is not writable by the build user {}:{}: give it to \
                 that user (`chown -R {}:{} {}`) or build as its owner",
                path.display(),
                meta.uid(),
                meta.gid(),
                meta.mode() & 0o7777,
                user.uid,
                user.gid,
                user.uid,
                user.gid,
                path.display()
            ),
        )
    })
}

/// Whether the output of `locale -a` lists en_US.UTF-8 (glibc prints it as `en_US.utf8`).
pub fn has_en_us_utf8(locale_a: &str) -> bool {
    locale_a.lines().any(|l| {
        let l = l.trim().to_ascii_lowercase();
        l == "en_us.utf8" || l == "en_us.utf-8"
    })
}

fn native_problems(host: &Host) -> Vec<Problem> {
    let mut problems = Vec::new();
    let spawn = Spawn {
        program: "locale".into(),
        args: vec!["-a".into()],
        env: None,
        set: Vec::new(),
        cwd: None,
    };
    match process::capture(&spawn, host, None) {
        Ok(c) if c.exit.success() && has_en_us_utf8(&c.stdout) => {}
        Ok(_) | Err(_) => problems.push(problem(
            Check::Locale,
            "the en_US.UTF-8 locale is not available (`locale -a` does not list en_US.utf8), and \
             bitbake refuses other locales: generate it (`apt-get install locales`, then \
             `localedef -i en_US -f UTF-8 en_US.UTF-8`), or build in a container"
                .into(),
        )),
    }
    let missing: Vec<&str> =
        NATIVE_TOOLS.iter().copied().filter(|t| host.find(t).is_none()).collect();
    if !missing.is_empty() {
        problems.push(problem(
            Check::HostTools,
            format!(
                "bitbake's host tools are missing from PATH: {}; install the Yocto host \
                 packages (the list in yocto/docker/Dockerfile), or build in a container",
                missing.join(", ")
            ),
        ));
    }
    problems
}

/// Whether another process holds `lock` (bitbake takes an exclusive `flock` on it while a
/// server runs); a missing file is free.
fn lock_problem(lock: &Path) -> Option<Problem> {
    let file = File::open(lock).ok()?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        // Dropping the file releases the lock again.
        Ok(()) => None,
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let holder = std::fs::read_to_string(lock).unwrap_or_default();
            let holder = holder.trim();
            Some(problem(
                Check::BitbakeLock,
                format!(
                    "{} is held by a running bitbake{}: wait for it to finish, or stop it \
                     (`bitbake -m` in that build directory)",
                    lock.display(),
                    if holder.is_empty() { String::new() } else { format!(" ({holder})") }
                ),
            ))
        }
        Err(e) => Some(problem(
            Check::BitbakeLock,
            format!("cannot test the lock {}: {e}", lock.display()),
        )),
    }
}
