//! Whether bitbake can cut the network of its tasks in the builder.
//!
//! bitbake-worker runs every task whose `[network]` flag is unset (everything but `do_fetch`
//! and the shared-state tasks) in a new user and network namespace of its own, through
//! `bb.utils.disable_network`, so a compile step that tries to download fails. It does so only
//! when the build user's uid has a line in `/etc/passwd` (`bb.utils.is_local_uid`), and when
//! `unshare(CLONE_NEWUSER | CLONE_NEWNET)` fails it goes on with the network and says so only
//! at debug level. Under Docker both conditions failed: `--user <uid>:<gid>` names a uid the
//! image does not list, and Docker's default seccomp profile refuses `unshare` without
//! `CAP_SYS_ADMIN`. So the fetch run, which has the network, and a build run that keeps it for
//! the team caches let every task reach the network, silently.
//!
//! The runner now gives the container an account for the build user ([`super::account_files`])
//! and, for Docker, lets `unshare` through ([`super::Engine::plan`]). [`check`] proves it before
//! a run that has the network: [`probe`] runs [`PROBE`] in the same builder, with the same
//! flags, as the same user, and [`PROBE`] calls BitBake's own `is_local_uid` and
//! `disable_network` from the poky checkout, then looks at what the kernel gives it: a new
//! network namespace with loopback only, and the same uid. Anything else stops the build with
//! the reason and what to do ([`Error::TaskNetwork`]).

use std::fmt;
use std::path::Path;

use super::{COMMAND_AT, Engine, Error, Exit, Invocation, Result, Runner};

/// The word that starts the probe's answer line.
pub const MARK: &str = "secretvm-task-network:";

/// The probe, a Python program run with `python3 -c` in poky's build environment (bitbake on
/// `PATH`). It prints one line, [`MARK`] and then `cut`, or the reason it is not cut:
/// `no-bitbake <why>`, `not-local <uid>`, `uid-map <error>`, `unshare <error>` or
/// `interfaces <names> uid <uid>`.
pub const PROBE: &str = r#"import ctypes, os, shutil, sys
def say(*words):
    print("secretvm-task-network:", *words, flush=True)
    sys.exit(0)
bitbake = shutil.which("bitbake")
if not bitbake:
    say("no-bitbake", "bitbake is not on PATH")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(bitbake))), "lib"))
try:
    import bb.utils
except Exception as e:
    say("no-bitbake", "cannot import bb.utils:", str(e))
uid, gid = os.getuid(), os.getgid()
if not bb.utils.is_local_uid(uid):
    say("not-local", str(uid))
before = os.readlink("/proc/self/ns/net")
try:
    bb.utils.disable_network(uid, gid)
except OSError as e:
    say("uid-map", str(e))
if os.readlink("/proc/self/ns/net") == before:
    libc = ctypes.CDLL(None, use_errno=True)
    err = ctypes.get_errno() if libc.unshare(0x50000000) != 0 else 0
    say("unshare", os.strerror(err) if err else "failed once, then succeeded")
with open("/proc/net/dev") as f:
    names = sorted(line.split(":")[0].strip() for line in f.read().splitlines()[2:])
if names != ["lo"] or os.getuid() != uid:
    say("interfaces", ",".join(names), "uid", str(os.getuid()))
say("cut")
"#;

/// `inv` (a build's run: [`super::build_invocation`]) with [`PROBE`] as its command: the same
/// image, flags, mounts, environment, user and network.
pub fn probe(inv: &Invocation) -> Invocation {
    let mut argv: Vec<String> = inv.argv.iter().take(COMMAND_AT).cloned().collect();
    argv.extend(["python3", "-c", PROBE].map(String::from));
    Invocation { argv, ..inv.clone() }
}

/// Why bitbake's tasks would keep the network.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// BitBake's code could not be loaded from the checkout.
    NoBitbake(String),
    /// The uid has no line in `/etc/passwd`, so bitbake does not try.
    NotLocal(String),
    /// `unshare` succeeded but writing the uid map failed (AppArmor's user-namespace
    /// restriction does this).
    UidMap(String),
    /// `unshare(CLONE_NEWUSER | CLONE_NEWNET)` failed with this error.
    Unshare(String),
    /// The new namespace still has these interfaces, or the uid changed.
    Interfaces(String),
    /// The probe printed no answer: the run itself failed.
    NoAnswer {
        /// How the run ended.
        exit: Exit,
        /// Its last lines.
        output: String,
    },
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// bitbake cuts the network of its tasks.
    Cut,
    /// It would not.
    Open(Reason),
}

/// Reads the probe's output: the last line that starts with [`MARK`].
pub fn verdict(lines: &[String], exit: Exit) -> Verdict {
    let answer = lines.iter().rev().find_map(|l| l.strip_prefix(MARK)).map(str::trim);
    let Some(answer) = answer else {
        let start = lines.len().saturating_sub(20);
        return Verdict::Open(Reason::NoAnswer { exit, output: lines[start..].join("\n") });
    };
    let (word, rest) = answer.split_once(' ').unwrap_or((answer, ""));
    let rest = rest.to_owned();
    match word {
        "cut" => Verdict::Cut,
        "no-bitbake" => Verdict::Open(Reason::NoBitbake(rest)),
        "not-local" => Verdict::Open(Reason::NotLocal(rest)),
        "uid-map" => Verdict::Open(Reason::UidMap(rest)),
        "unshare" => Verdict::Open(Reason::Unshare(rest)),
        "interfaces" => Verdict::Open(Reason::Interfaces(rest)),
        _ => Verdict::Open(Reason::NoAnswer { exit, output: answer.to_owned() }),
    }
}

/// Runs [`probe`] of `inv` with `runner` (raw output in `log`); an error unless bitbake cuts
/// the network of its tasks.
pub fn check(runner: &mut dyn Runner, engine: Engine, inv: &Invocation, log: &Path) -> Result<()> {
    let mut lines = Vec::new();
    let exit = runner.run(&probe(inv), log, &mut |l| lines.push(l.to_owned()))?;
    match verdict(&lines, exit) {
        Verdict::Cut => Ok(()),
        Verdict::Open(reason) => Err(Error::TaskNetwork { engine, reason }),
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoBitbake(why) => write!(f, "BitBake's code did not load ({why})"),
            Reason::NotLocal(uid) => write!(f, "uid {uid} has no line in /etc/passwd"),
            Reason::UidMap(err) => {
                write!(
                    f,
                    "unshare succeeded but writing the user namespace's uid map failed ({err})"
                )
            }
            Reason::Unshare(err) => write!(f, "unshare(CLONE_NEWUSER|CLONE_NEWNET) failed: {err}"),
            Reason::Interfaces(what) => {
                write!(f, "the task's namespace still has the interfaces {what}")
            }
            Reason::NoAnswer { exit, output } => {
                write!(f, "the check's run ended with {exit} and no answer")?;
                if !output.is_empty() {
                    write!(f, ":\n{output}")?;
                }
                Ok(())
            }
        }
    }
}

/// What to do about `reason` on `engine`.
pub(crate) fn remedy(engine: Engine, reason: &Reason) -> String {
    let native = engine == Engine::Native;
    match reason {
        Reason::NoBitbake(_) => "check that the poky checkout (the config's poky repository) \
             is complete, with `bitbake/bin/bitbake` and `bitbake/lib/bb`, and that the builder \
             has python3"
            .into(),
        Reason::NotLocal(_) if native => "bitbake cuts the network only for accounts listed in \
             /etc/passwd, and this one comes from a directory service; build as a local user, \
             or in a container (--engine docker or podman), where secretvm lists the build user"
            .into(),
        Reason::NotLocal(_) => "secretvm mounts build/secretvm-passwd over the builder's \
             /etc/passwd with a line for the build user; something replaced it (an extra engine \
             option or a changed image)"
            .into(),
        Reason::UidMap(_) => "this is AppArmor's restriction of unprivileged user namespaces \
             (Ubuntu 23.10 and later, kernel.apparmor_restrict_unprivileged_userns=1): allow \
             them for the build (an AppArmor profile for the builder, or that sysctl set to 0)"
            .into(),
        Reason::Unshare(_) if native => "this host forbids unprivileged user namespaces: allow \
             them (user.max_user_namespaces above 0, and kernel.unprivileged_userns_clone=1 \
             where that sysctl exists); if this host is itself a container, its seccomp profile \
             refuses unshare, so build with --engine docker or podman on a real host instead"
            .into(),
        Reason::Unshare(_) if engine == Engine::Docker => "secretvm runs Docker's networked \
             containers with --cap-add=SYS_ADMIN, which makes Docker's default seccomp profile \
             allow unshare; this daemon still refuses it, so its own seccomp profile \
             (dockerd --seccomp-profile) or an LSM policy forbids user namespaces (on Ubuntu \
             23.10 and later, AppArmor's kernel.apparmor_restrict_unprivileged_userns): allow \
             unshare there, or use podman"
            .into(),
        Reason::Unshare(_) => "podman's seccomp profile or the host's user-namespace settings \
             (user.max_user_namespaces) refuse it: allow user namespaces, or use Docker"
            .into(),
        Reason::Interfaces(_) => "the kernel gave the task a network namespace that is not \
             empty; report this with the output above"
            .into(),
        Reason::NoAnswer { output, .. } if output.contains("/dev/net/tun") => {
            "rootless podman's network helper (slirp4netns or pasta) could not open \
             /dev/net/tun: load the tun module and let the user open the device (a container \
             host may have to pass it in)"
                .into()
        }
        Reason::NoAnswer { output, .. }
            if output.contains("could not find slirp4netns")
                || output.contains("could not find pasta") =>
        {
            "rootless podman needs a user-mode network helper for a container with the \
             network: install slirp4netns (podman 4) or passt (podman 5)"
                .into()
        }
        Reason::NoAnswer { .. } => "the engine could not run the builder with the network; \
             the output above is the engine's"
            .into(),
    }
}
