//! The error type of the runner: what was started, what it said, and what to do about it.

use std::path::PathBuf;

use super::isolation::{Reason, remedy};
use super::preflight::Problem;
use super::signing;
use super::{Engine, Exit};

/// The result type of the runner.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong when starting or checking processes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The build would run as root.
    #[error(
        "the build would run as uid 0: oe-core's sanity check refuses to build as root; run as a \
         normal user (the container gets --user <your uid>:<your gid>), or name a non-root build \
         user whose uid can write the mounted directories (`secretvm build --user 1000:1000`)"
    )]
    Root,

    /// A value cannot be put on a command line safely.
    #[error("{what} is {found:?}, expected {expected}")]
    Invalid {
        /// What the value is.
        what: String,
        /// The value.
        found: String,
        /// What was expected.
        expected: &'static str,
    },

    /// A program is not on `PATH`.
    #[error("`{program}` is not on PATH ({path})")]
    NotFound {
        /// The program.
        program: String,
        /// The `PATH` searched.
        path: String,
    },

    /// A program could not be started.
    #[error("cannot start `{program}`")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A file operation failed.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done (`cannot create the log`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A program ran and failed; `output` is the end of what it printed.
    #[error("`{command}` failed ({exit}){}", if output.is_empty() { String::new() } else { format!(":\n{output}") })]
    Failed {
        /// The command line, shell-quoted.
        command: String,
        /// How it ended.
        exit: Exit,
        /// Its last lines of output (stderr and stdout).
        output: String,
    },

    /// Preflight found problems; each says what to do.
    #[error("the build cannot start:\n{}", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Preflight {
        /// Every problem found, not only the first.
        problems: Vec<Problem>,
    },

    /// A layer checkout has local changes.
    #[error(
        "{} has local changes, so it cannot be moved to the pinned commit; commit or stash them \
         (or delete the checkout to clone it again):\n{status}", path.display()
    )]
    Dirty {
        /// The checkout.
        path: PathBuf,
        /// `git status --porcelain`.
        status: String,
    },

    /// A checkout is not at the commit it was moved to.
    #[error("{}: HEAD is {found}, expected {expected}", path.display())]
    WrongHead {
        /// The checkout.
        path: PathBuf,
        /// The pinned commit.
        expected: String,
        /// `git rev-parse HEAD`.
        found: String,
    },

    /// A branch that a floating SRCREV follows is not on its server.
    #[error(
        "{url} has no branch {branch:?} (git ls-remote found none){}",
        if got.is_empty() { String::new() } else { format!(": {got}") }
    )]
    NoSuchBranch {
        /// The repository.
        url: String,
        /// The branch.
        branch: String,
        /// What `git ls-remote` printed instead of one `<commit>\trefs/heads/<branch>` line.
        got: String,
    },

    /// bitbake would not cut the network of its tasks in a run that has the network.
    #[error(
        "bitbake cannot cut the network of its tasks here: {reason}. A run of this build has the \
         network (the fetch run, --online, team caches on the network, or any native run), so every task, not \
         only do_fetch, could download, and the output could depend on what a server sent. \
         {}", remedy(*engine, reason)
    )]
    TaskNetwork {
        /// The engine of the run.
        engine: Engine,
        /// What the probe found.
        reason: Reason,
    },

    /// The keyring for signed sstate cannot be used.
    #[error(
        "the keyring for signed sstate ([cache.sstate_signatures]) cannot be used:\n{}",
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    )]
    SstateKeys {
        /// Every problem found.
        problems: Vec<signing::Problem>,
    },
}
