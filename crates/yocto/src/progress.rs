//! bitbake's console output, line by line, turned into [`Event`]s.
//!
//! The input is what the knotty UI of bitbake 2.8 prints when its output is not a terminal
//! (we run it without a TTY). The formats come from knotty (`lib/bb/ui/knotty.py`) and the
//! runqueue events it prints, and are checked against output captured from real bitbake 2.8.0
//! runs of poky scarthgap on our layer (`tests/fixtures/knotty-*.log`, `tests/knotty.rs`):
//!
//! - `Parsing of N .bb files complete (C cached, P parsed). T targets, S skipped, M masked,
//!   E errors.` (with multiconfigs, N counts every recipe once per configuration).
//! - `Loaded N entries from dependency cache.`
//! - `NOTE: Running task N of M (<taskstring>)`, `NOTE: Running noexec task N of M (...)`,
//!   `NOTE: Running setscene task N of M (...)`, where a task string is
//!   `[mc:<mc>:][virtual:<class>:]<recipe file>:do_<task>`.
//! - `WARNING: ...`, `ERROR: ...`, `ERROR: Logfile of failure stored in: <path>`,
//!   `ERROR: Task (<taskstring>) failed with exit code '<code>'`. A message of several lines
//!   has its level on the first line only: the lines after a `WARNING:` or `ERROR:` that do
//!   not start a new record are [`Event::Continued`] (the skipped providers after
//!   `Nothing PROVIDES`, the sanity checker's problem list); blank lines inside give nothing.
//! - `NOTE: Tasks Summary: Attempted X tasks of which Y didn't need to be rerun and Z failed.`
//!   (or `... and all succeeded.`).
//! - The closing summary: `Summary: N task(s) failed:`, then per task `  <taskstring>` and
//!   optionally `    log: <path>`; `Summary: There was/were N WARNING message(s).`;
//!   `Summary: There was/were N ERROR message(s), returning a non-zero exit code.` bitbake's
//!   ERROR count is its own: a failed task prints three `ERROR:` lines and counts one.
//!
//! A terminal progress bar (`Parsing recipes:  45% |###   | ETA: ...`, segments separated by
//! `\r`) and the `-u teamcity` form (`##teamcity[progressMessage 'Parsing recipes: 50%']`) give
//! [`Event::ParseProgress`]; these two shapes are still written from knotty's source, not
//! captured. Lines that match nothing give no event; the caller keeps the raw log anyway.

/// What kind of task started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// A task that runs.
    Task,
    /// A task with nothing to execute (`noexec`).
    Noexec,
    /// A setscene task (restoring from sstate).
    Setscene,
}

/// A task as bitbake names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    /// The multiconfig (`tdx`), if any.
    pub mc: Option<String>,
    /// The recipe variant class (`native`, `nativesdk`), if any.
    pub variant: Option<String>,
    /// The recipe file path as bitbake printed it.
    pub file: String,
    /// The recipe name from the file name (before `_<version>` and `.bb`).
    pub recipe: String,
    /// The task, with its `do_` prefix.
    pub task: String,
}

impl TaskRef {
    /// Parses a task string; `None` when it has no `:<task>` part.
    pub fn parse(s: &str) -> Option<TaskRef> {
        let mut rest = s.trim();
        let mut mc = None;
        if let Some(r) = rest.strip_prefix("mc:") {
            let (name, r) = r.split_once(':')?;
            mc = Some(name.to_owned());
            rest = r;
        }
        let mut variant = None;
        if let Some(r) = rest.strip_prefix("virtual:") {
            let (class, r) = r.split_once(':')?;
            variant = Some(class.to_owned());
            rest = r;
        }
        let (file, task) = rest.rsplit_once(':')?;
        if file.is_empty() || task.is_empty() {
            return None;
        }
        let base = file.rsplit('/').next().unwrap_or(file);
        let base = base.strip_suffix(".bb").unwrap_or(base);
        let recipe = base.split_once('_').map_or(base, |(pn, _)| pn);
        Some(TaskRef {
            mc,
            variant,
            file: file.to_owned(),
            recipe: recipe.to_owned(),
            task: task.to_owned(),
        })
    }
}

/// One thing bitbake reported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Recipe parsing is this far (only with a terminal or the teamcity UI).
    ParseProgress {
        /// 0 to 100.
        percent: u8,
    },
    /// The dependency cache was loaded.
    CacheLoaded {
        /// Entries loaded.
        entries: u64,
    },
    /// Recipe parsing finished.
    ParseComplete {
        /// `.bb` files.
        files: u64,
        /// Taken from the cache.
        cached: u64,
        /// Parsed now.
        parsed: u64,
        /// Targets (recipe variants).
        targets: u64,
        /// Skipped recipes.
        skipped: u64,
        /// Masked recipes.
        masked: u64,
        /// Parse errors.
        errors: u64,
    },
    /// A task started: `current` of `total`.
    TaskStarted {
        /// Task, noexec task or setscene task.
        kind: TaskKind,
        /// Its number, from 1.
        current: u64,
        /// How many tasks of this kind the run has.
        total: u64,
        /// The task.
        task: TaskRef,
    },
    /// A `WARNING:` line.
    Warning {
        /// The message after `WARNING: `.
        message: String,
    },
    /// An `ERROR:` line not covered by a more specific event.
    Error {
        /// The message after `ERROR: `.
        message: String,
    },
    /// `ERROR: Logfile of failure stored in: <path>`.
    FailureLog {
        /// The log path, as seen by bitbake (inside the container).
        path: String,
    },
    /// `ERROR: Task (<taskstring>) failed with exit code '<code>'`.
    TaskFailed {
        /// The task.
        task: TaskRef,
        /// The exit code as printed.
        exit_code: String,
    },
    /// `NOTE: Tasks Summary: ...`.
    TasksSummary {
        /// Tasks attempted.
        attempted: u64,
        /// Tasks that did not need to be rerun.
        not_rerun: u64,
        /// Tasks that failed.
        failed: u64,
    },
    /// One entry of the closing `Summary: N tasks failed:` list.
    FailedTask {
        /// The task.
        task: TaskRef,
        /// The `log:` path that follows it, if any.
        log: Option<String>,
    },
    /// `Summary: There were N WARNING messages.`
    WarningCount {
        /// N.
        count: u64,
    },
    /// `Summary: There were N ERROR messages, returning a non-zero exit code.`
    ErrorCount {
        /// N.
        count: u64,
    },
    /// A line that continues the last `WARNING:` or `ERROR:` message: bitbake prints a
    /// multi-line message with its level on the first line only, and the reason is often
    /// below it (after `Nothing PROVIDES 'x'`, each provider that was skipped and why; after
    /// the sanity checker's first line, the list of problems).
    Continued {
        /// The line as printed.
        text: String,
    },
}

/// How lines that bitbake prints as new records (or the knotty UI prints itself) start; after
/// a `WARNING:` or `ERROR:` line, every other non-empty line continues that message.
const RECORD_STARTS: &[&str] = &[
    "NOTE: ",
    "WARNING: ",
    "ERROR: ",
    "DEBUG: ",
    "Summary: ",
    "Parsing ",
    "Loading cache",
    "Loaded ",
    "Initialising tasks",
    "Build Configuration",
    "Bitbake still alive",
    "Sstate summary",
    "Checking sstate",
    "##teamcity",
    "Execution was interrupted",
];

/// Turns lines into events. The closing summary spans lines, so the parser keeps the failed
/// task whose `log:` line may follow; call [`Parser::finish`] after the last line.
#[derive(Debug, Default)]
pub struct Parser {
    in_failed_list: bool,
    pending: Option<TaskRef>,
    in_message: bool,
}

impl Parser {
    /// Feeds one line (without or with its line ending) and returns the events it completes:
    /// none, one, or two when it ends a pending summary entry and is an event itself.
    pub fn line(&mut self, line: &str) -> Vec<Event> {
        let line = line.trim_end_matches(['\n', '\r']);
        let mut out = Vec::new();
        if self.in_failed_list {
            if let Some(log) = line.strip_prefix("    log: ") {
                if let Some(task) = self.pending.take() {
                    out.push(Event::FailedTask { task, log: Some(log.to_owned()) });
                }
                return out;
            }
            if let Some(task) = self.pending.take() {
                out.push(Event::FailedTask { task, log: None });
            }
            if let Some(entry) = line.strip_prefix("  ").filter(|e| !e.starts_with(' ')) {
                self.pending = TaskRef::parse(entry);
                if self.pending.is_some() {
                    return out;
                }
            }
            self.in_failed_list = false;
        }
        if self.in_message {
            // Blank lines inside a message (the sanity checker's list has them) give nothing.
            if line.trim().is_empty() {
                return out;
            }
            if !RECORD_STARTS.iter().any(|s| line.starts_with(s)) {
                out.push(Event::Continued { text: line.to_owned() });
                return out;
            }
            self.in_message = false;
        }
        if let Some(event) = self.single(line) {
            self.in_message = matches!(event, Event::Warning { .. } | Event::Error { .. });
            out.push(event);
        }
        out
    }

    /// Flushes a pending summary entry at the end of the output.
    pub fn finish(&mut self) -> Option<Event> {
        self.in_failed_list = false;
        self.in_message = false;
        self.pending.take().map(|task| Event::FailedTask { task, log: None })
    }

    fn single(&mut self, line: &str) -> Option<Event> {
        // A terminal progress bar redraws with carriage returns; the last segment is current.
        let line = line.rsplit('\r').next().unwrap_or(line);
        if let Some(rest) = line.strip_prefix("NOTE: ") {
            return note(rest);
        }
        if let Some(message) = line.strip_prefix("WARNING: ") {
            return Some(Event::Warning { message: message.to_owned() });
        }
        if let Some(message) = line.strip_prefix("ERROR: ") {
            return Some(error(message));
        }
        if let Some(rest) = line.strip_prefix("Summary: ") {
            return self.summary(rest);
        }
        if let Some(rest) = line.strip_prefix("Parsing of ") {
            return parse_complete(rest);
        }
        if let Some(rest) = line.strip_prefix("Loaded ") {
            let n = rest.strip_suffix(" entries from dependency cache.")?;
            return Some(Event::CacheLoaded { entries: n.parse().ok()? });
        }
        let bar = line
            .strip_prefix("##teamcity[progressMessage 'Parsing recipes: ")
            .or_else(|| line.strip_prefix("Parsing recipes: "))?;
        let (pct, _) = bar.trim_start().split_once('%')?;
        let percent: u8 = pct.parse().ok()?;
        (percent <= 100).then_some(Event::ParseProgress { percent })
    }

    fn summary(&mut self, rest: &str) -> Option<Event> {
        if rest.ends_with(" task failed:") || rest.ends_with(" tasks failed:") {
            self.in_failed_list = true;
            return None;
        }
        let count = |s: &str| -> Option<u64> {
            let s = s.strip_prefix("There was ").or_else(|| s.strip_prefix("There were "))?;
            s.split_once(' ')?.0.parse().ok()
        };
        if rest.contains(" WARNING message") {
            return Some(Event::WarningCount { count: count(rest)? });
        }
        if rest.contains(" ERROR message") {
            return Some(Event::ErrorCount { count: count(rest)? });
        }
        None
    }
}

fn note(rest: &str) -> Option<Event> {
    let started = [
        ("Running task ", TaskKind::Task),
        ("Running noexec task ", TaskKind::Noexec),
        ("Running setscene task ", TaskKind::Setscene),
    ];
    for (prefix, kind) in started {
        if let Some(r) = rest.strip_prefix(prefix) {
            let (counts, task) = r.split_once(" (")?;
            let (current, total) = counts.split_once(" of ")?;
            let task = TaskRef::parse(task.strip_suffix(')')?)?;
            return Some(Event::TaskStarted {
                kind,
                current: current.parse().ok()?,
                total: total.parse().ok()?,
                task,
            });
        }
    }
    let r = rest.strip_prefix("Tasks Summary: Attempted ")?;
    let (attempted, r) = r.split_once(" tasks of which ")?;
    let (not_rerun, r) = r.split_once(" didn't need to be rerun and ")?;
    let failed =
        if r == "all succeeded." { 0 } else { r.strip_suffix(" failed.")?.parse().ok()? };
    Some(Event::TasksSummary {
        attempted: attempted.parse().ok()?,
        not_rerun: not_rerun.parse().ok()?,
        failed,
    })
}

fn error(message: &str) -> Event {
    if let Some((_, path)) = message.split_once("Logfile of failure stored in: ") {
        return Event::FailureLog { path: path.to_owned() };
    }
    let failed = message.strip_prefix("Task (").and_then(|r| {
        let (task, code) = r.rsplit_once(") failed with exit code '")?;
        Some(Event::TaskFailed {
            task: TaskRef::parse(task)?,
            exit_code: code.strip_suffix('\'')?.to_owned(),
        })
    });
    failed.unwrap_or_else(|| Event::Error { message: message.to_owned() })
}

fn parse_complete(rest: &str) -> Option<Event> {
    // "N .bb files complete (C cached, P parsed). T targets, S skipped, M masked, E errors."
    let (files, r) = rest.split_once(" .bb files complete (")?;
    let (cached, r) = r.split_once(" cached, ")?;
    let (parsed, r) = r.split_once(" parsed). ")?;
    let (targets, r) = r.split_once(" targets, ")?;
    let (skipped, r) = r.split_once(" skipped, ")?;
    let (masked, r) = r.split_once(" masked, ")?;
    let errors = r.strip_suffix(" errors.")?;
    Some(Event::ParseComplete {
        files: files.parse().ok()?,
        cached: cached.parse().ok()?,
        parsed: parsed.parse().ok()?,
        targets: targets.parse().ok()?,
        skipped: skipped.parse().ok()?,
        masked: masked.parse().ok()?,
        errors: errors.parse().ok()?,
    })
}

/// Why poky's sstate code refused to install an sstate object under `SSTATE_VERIFY_SIG`
/// ([`sstate_refusal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The object came without a `.sig` (`No signature file for sstate package ...`).
    Unsigned,
    /// Its signature was not good, or not by a key of `SSTATE_VALID_SIGS` (`Cannot verify
    /// signature on sstate package ...`): a changed object, another signer, or no key for it.
    NotVerified,
}

/// An sstate object refused for its signature; the task then ran from source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SstateRefusal {
    /// Who warned: `<PN>-<PV>-<PR> do_<task>_setscene`, as the task's messages start.
    pub task: String,
    /// The sstate object, as the builder sees it.
    pub package: String,
    /// Why.
    pub reason: RefusalReason,
}

/// The refusal a `WARNING:` message (an [`Event::Warning`]'s text) reports, if it is one of
/// the two that scarthgap's `sstate_installpkg` prints when it will not install an sstate
/// object for its signature: `<who>: No signature file for sstate package <path>, skipping
/// acceleration...` and `<who>: Cannot verify signature on sstate package <path>, skipping
/// acceleration...`. bitbake goes on (the setscene task fails, the real task runs) and exits
/// 0, so these warnings are the only sign that a shared sstate object was unsigned or changed.
pub fn sstate_refusal(message: &str) -> Option<SstateRefusal> {
    const SUFFIX: &str = ", skipping acceleration...";
    let reasons = [
        (": No signature file for sstate package ", RefusalReason::Unsigned),
        (": Cannot verify signature on sstate package ", RefusalReason::NotVerified),
    ];
    reasons.into_iter().find_map(|(phrase, reason)| {
        let (task, rest) = message.split_once(phrase)?;
        let package = rest.strip_suffix(SUFFIX)?;
        Some(SstateRefusal { task: task.to_owned(), package: package.to_owned(), reason })
    })
}
