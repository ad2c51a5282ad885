//! Running bitbake for `secretvm build`: each output line of the runner goes to
//! [`progress::Parser`]; a [`Tracker`] folds the events into what the user sees (task n of m
//! and the current task, warnings and errors as they come, a bar on a terminal), the raw
//! output is kept in the log file by the runner, and a failed build ends with the failing
//! tasks and their logs as paths on this host.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use secretvm_yocto::progress::{self, Event, RefusalReason, SstateRefusal, TaskKind, TaskRef};
use secretvm_yocto::runner::{Exit, Invocation, Mount, Runner, to_host_path};

/// One failed task, with its log on this host when bitbake named one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// `mc:<mc>:<recipe>:<task>`.
    pub(crate) task: String,
    /// The task's log, mapped from the builder's path to this host's.
    pub(crate) log: Option<PathBuf>,
}

/// How a bitbake run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The exit of bitbake (or of the engine).
    pub(crate) exit: Exit,
    /// Failed tasks, in the order bitbake reported them, each once.
    pub(crate) failures: Vec<Failure>,
    /// `WARNING:` lines seen.
    pub(crate) warnings: u64,
    /// `ERROR:` lines seen.
    pub(crate) errors: u64,
    /// Sstate objects refused for their signature (signed sstate), in the order reported.
    pub(crate) refused: Vec<SstateRefusal>,
}

impl Outcome {
    /// What the run's refused sstate objects come to, for the end of the run: `None` when
    /// there were none. bitbake reports each only as warnings and goes on from source, so
    /// this is where a mirror that serves unsigned or changed objects gets noticed.
    pub(crate) fn refusal_report(&self, log: &Path) -> Option<String> {
        if self.refused.is_empty() {
            return None;
        }
        let count = |r: RefusalReason| self.refused.iter().filter(|x| x.reason == r).count();
        let mut out = format!(
            "signed sstate: {} sstate object(s) refused and their tasks run from source ({} \
             without a signature, {} whose signature is not a good one by a signer: changed, \
             or signed by another key); look at where they came from:",
            self.refused.len(),
            count(RefusalReason::Unsigned),
            count(RefusalReason::NotVerified),
        );
        for r in &self.refused {
            let why = match r.reason {
                RefusalReason::Unsigned => "no signature",
                RefusalReason::NotVerified => "signature not verified",
            };
            out.push_str(&format!("\n  {}: {why}: {}", r.task, r.package));
        }
        out.push_str(&format!("\nfull output: {}", log.display()));
        Some(out)
    }

    /// The report printed after a failed build: the failed tasks and where their logs are.
    pub(crate) fn failure_report(&self, log: &Path) -> String {
        let mut out = format!("bitbake failed ({})", self.exit);
        if self.failures.is_empty() {
            out.push_str(&format!("; no task failure was reported, see {}", log.display()));
        }
        for f in &self.failures {
            out.push_str(&format!("\n  {}", f.task));
            if let Some(path) = &f.log {
                out.push_str(&format!("\n    log: {}", path.display()));
            }
        }
        out.push_str(&format!("\nfull output: {}", log.display()));
        out
    }
}

/// The state shown to the user, built from events.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    mounts: Vec<Mount>,
    /// The last task started: kind, current, total, label.
    pub(crate) current: Option<(TaskKind, u64, u64, String)>,
    failures: Vec<Failure>,
    pending_log: Option<PathBuf>,
    warnings: u64,
    errors: u64,
    refused: Vec<SstateRefusal>,
}

fn label(task: &TaskRef) -> String {
    match &task.mc {
        Some(mc) => format!("mc:{mc}:{}:{}", task.recipe, task.task),
        None => format!("{}:{}", task.recipe, task.task),
    }
}

impl Tracker {
    /// A tracker that maps builder paths to this host through `mounts`.
    pub(crate) fn new(mounts: &[Mount]) -> Tracker {
        Tracker { mounts: mounts.to_vec(), ..Tracker::default() }
    }

    fn host(&self, path: &str) -> PathBuf {
        to_host_path(path, &self.mounts).unwrap_or_else(|| PathBuf::from(path))
    }

    fn fail(&mut self, task: String, log: Option<PathBuf>) {
        match self.failures.iter_mut().find(|f| f.task == task) {
            Some(f) => {
                if f.log.is_none() {
                    f.log = log;
                }
            }
            None => self.failures.push(Failure { task, log }),
        }
    }

    /// Takes one event; returns a message to print above the bar, if it deserves one.
    pub(crate) fn event(&mut self, event: &Event) -> Option<String> {
        match event {
            Event::TaskStarted { kind, current, total, task } => {
                self.current = Some((*kind, *current, *total, label(task)));
                None
            }
            Event::ParseComplete { files, .. } => Some(format!("parsed {files} recipes")),
            Event::Warning { message } => {
                self.warnings += 1;
                self.refused.extend(progress::sstate_refusal(message));
                Some(format!("WARNING: {message}"))
            }
            Event::Error { message } => {
                self.errors += 1;
                Some(format!("ERROR: {message}"))
            }
            // The lines under an error say why (the skipped providers, the sanity problems).
            Event::Continued { text } => Some(format!("  {text}")),
            Event::FailureLog { path } => {
                self.errors += 1;
                // knotty prints the log line just before the "Task (...) failed" line.
                self.pending_log = Some(self.host(path));
                None
            }
            Event::TaskFailed { task, exit_code } => {
                self.errors += 1;
                let log = self.pending_log.take();
                let name = label(task);
                let msg = match &log {
                    Some(p) => {
                        format!("FAILED: {name} (exit code {exit_code}), log: {}", p.display())
                    }
                    None => format!("FAILED: {name} (exit code {exit_code})"),
                };
                self.fail(name, log);
                Some(msg)
            }
            Event::FailedTask { task, log } => {
                let log = log.as_deref().map(|p| self.host(p));
                self.fail(label(task), log);
                None
            }
            _ => None,
        }
    }

    /// The status line: `[n/m] <percent>% <bar> <task>`, at most `width` characters.
    pub(crate) fn status(&self, width: usize) -> Option<String> {
        let (kind, current, total, task) = self.current.as_ref()?;
        let what = match kind {
            TaskKind::Setscene => "sstate",
            TaskKind::Task | TaskKind::Noexec => "task",
        };
        let percent = current.saturating_mul(100) / (*total).max(1);
        let filled = usize::try_from(percent / 5).unwrap_or(20).min(20);
        let line =
            format!("{what} {current}/{total} [{:<20}] {percent:>3}% {task}", "#".repeat(filled));
        Some(line.chars().take(width).collect())
    }

    /// The outcome, once the run ended with `exit`.
    pub(crate) fn finish(self, exit: Exit) -> Outcome {
        Outcome {
            exit,
            failures: self.failures,
            warnings: self.warnings,
            errors: self.errors,
            refused: self.refused,
        }
    }
}

/// Runs `inv` through `runner` with its raw output in `log`, showing progress on stderr (a
/// redrawn status line on a terminal, one line per 10% of the tasks otherwise), and returns
/// the outcome. A non-zero exit is not an error here: print [`Outcome::failure_report`].
#[allow(clippy::print_stderr)]
pub(crate) fn run_bitbake(
    runner: &mut dyn Runner,
    inv: &Invocation,
    log: &Path,
) -> Result<Outcome> {
    let terminal = std::io::stderr().is_terminal();
    let mut parser = progress::Parser::default();
    let mut tracker = Tracker::new(&inv.mounts);
    let mut shown_decile = None;
    let mut drawn = false;
    let mut handle = |tracker: &mut Tracker, events: Vec<Event>| {
        for event in &events {
            if let Some(msg) = tracker.event(event) {
                if drawn {
                    eprint!("\r\x1b[2K");
                    drawn = false;
                }
                eprintln!("{msg}");
            }
        }
        if let Some((_, current, total, _)) = &tracker.current {
            if terminal {
                if let Some(line) = tracker.status(100) {
                    eprint!("\r\x1b[2K{line}");
                    let _ = std::io::stderr().flush();
                    drawn = true;
                }
            } else {
                let decile = current.saturating_mul(10) / (*total).max(1);
                if shown_decile != Some(decile) {
                    shown_decile = Some(decile);
                    if let Some(line) = tracker.status(200) {
                        eprintln!("{line}");
                    }
                }
            }
        }
    };
    let exit = runner
        .run(inv, log, &mut |line| {
            let events = parser.line(line);
            handle(&mut tracker, events);
        })
        .with_context(|| format!("bitbake did not run (its output is in {})", log.display()))?;
    let last: Vec<Event> = parser.finish().into_iter().collect();
    handle(&mut tracker, last);
    if drawn {
        eprintln!();
    }
    Ok(tracker.finish(exit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secretvm_yocto::runner::{Network, Recording, User};

    /// A failing multiconfig build in bitbake 2.8 knotty's non-TTY format (the line shapes of
    /// `lib/bb/ui/knotty.py`, as in the progress parser's tests).
    const FAILING: &str = "\
Parsing of 2104 .bb files complete (0 cached, 2104 parsed). 3217 targets, 172 skipped, 0 masked, 0 errors.
NOTE: Running task 1 of 4521 (mc:tdx:/secret-vm-build/meta-secret/recipes-core/images/secret-vm-initramfs.bb:do_fetch)
WARNING: mc:tdx:linux-yocto-dev-6.9+git-r0 do_kernel_configcheck: [kernel config]: not in the final configuration
NOTE: Running task 2260 of 4521 (mc:sev:/secret-vm-build/meta-secret/recipes-kernel/linux/linux-amdese_git.bb:do_compile)
ERROR: mc:sev:linux-amdese-6.16-r0 do_compile: oe_runmake failed
ERROR: Logfile of failure stored in: /secret-vm-build/build/tmp-sev-glibc/work/x/linux-amdese/6.16-r0/temp/log.do_compile.48213
ERROR: Task (mc:sev:/secret-vm-build/meta-secret/recipes-kernel/linux/linux-amdese_git.bb:do_compile) failed with exit code '1'
NOTE: Tasks Summary: Attempted 4390 tasks of which 4021 didn't need to be rerun and 1 failed.

Summary: 1 task failed:
  mc:sev:/secret-vm-build/meta-secret/recipes-kernel/linux/linux-amdese_git.bb:do_compile
    log: /secret-vm-build/build/tmp-sev-glibc/work/x/linux-amdese/6.16-r0/temp/log.do_compile.48213
Summary: There was 1 WARNING message.
Summary: There were 3 ERROR messages, returning a non-zero exit code.
";

    fn invocation() -> Invocation {
        Invocation {
            argv: vec!["bitbake".into()],
            workdir: "/secret-vm-build".into(),
            mounts: vec![Mount {
                host: "/home/alice/secretvm".into(),
                container: "/secret-vm-build".into(),
                read_only: false,
            }],
            env: Vec::new(),
            user: User { uid: 1000, gid: 1000 },
            network: Network::Default,
        }
    }

    #[test]
    fn a_failed_build_reports_its_task_with_the_host_log_path() {
        let mut runner = Recording {
            output: FAILING.lines().map(String::from).collect(),
            exit: Exit::Code(1),
            ..Recording::default()
        };
        let inv = invocation();
        let outcome = run_bitbake(&mut runner, &inv, Path::new("/tmp/bitbake.log")).unwrap();
        let host_log = "/home/alice/secretvm/build/tmp-sev-glibc/work/x/linux-amdese/6.16-r0/temp/log.do_compile.48213";
        assert_eq!(
            outcome,
            Outcome {
                exit: Exit::Code(1),
                failures: vec![Failure {
                    task: "mc:sev:linux-amdese:do_compile".into(),
                    log: Some(host_log.into()),
                }],
                warnings: 1,
                errors: 3,
                refused: Vec::new(),
            }
        );
        assert_eq!(outcome.refusal_report(Path::new("/tmp/bitbake.log")), None);
        assert_eq!(
            outcome.failure_report(Path::new("/tmp/bitbake.log")),
            format!(
                "bitbake failed (exit status 1)\n  mc:sev:linux-amdese:do_compile\n    log: \
                 {host_log}\nfull output: /tmp/bitbake.log"
            )
        );
        assert_eq!(runner.invocations, [(inv, PathBuf::from("/tmp/bitbake.log"))]);
    }

    /// Real output (`crates/yocto/tests/fixtures/knotty-sstate-signatures.log`: a mirror whose
    /// `do_deploy` object lost its signature and whose `do_populate_sysroot` object was
    /// changed): bitbake exits 0, and the run ends with both objects named, each with why.
    #[test]
    fn refused_sstate_objects_are_summed_up() {
        let log = include_str!("../../yocto/tests/fixtures/knotty-sstate-signatures.log");
        let mut runner =
            Recording { output: log.lines().map(String::from).collect(), ..Recording::default() };
        let outcome = run_bitbake(&mut runner, &invocation(), Path::new("/b/log")).unwrap();
        assert!(outcome.exit.success());
        let report = outcome.refusal_report(Path::new("/b/log")).unwrap_or_default();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 4, "{report}");
        assert!(lines[0].starts_with("signed sstate: 2 sstate object(s) refused"), "{report}");
        assert!(lines[0].contains("(1 without a signature, 1 whose signature"), "{report}");
        let object = |l: &str, task: &str, why: &str| {
            l.starts_with(&format!("  sst-hello-1.0-r0 do_{task}_setscene: {why}: /tmp/sst/"))
                && l.ends_with(&format!("_{task}.tar.zst"))
        };
        assert!(object(lines[1], "populate_sysroot", "signature not verified"), "{report}");
        assert!(object(lines[2], "deploy", "no signature"), "{report}");
        assert_eq!(lines[3], "full output: /b/log");
    }

    /// Real output (`crates/yocto/tests/fixtures`): the reason a target has no provider is on
    /// the lines under the error, and the user sees them.
    #[test]
    fn the_lines_under_an_error_are_shown() {
        let log = include_str!("../../yocto/tests/fixtures/knotty-no-provider.log");
        let mut t = Tracker::new(&[]);
        let mut p = progress::Parser::default();
        let shown: Vec<String> =
            log.lines().flat_map(|l| p.line(l)).filter_map(|e| t.event(&e)).collect();
        let reason = log
            .lines()
            .find(|l| l.starts_with("linux-yocto-dev PROVIDES virtual/kernel but was skipped: "))
            .unwrap();
        let at = shown.iter().position(|m| m == "ERROR: Nothing PROVIDES 'virtual/kernel'");
        let at = at.unwrap_or_else(|| panic!("{shown:?}"));
        assert!(shown[at + 1..].contains(&format!("  {reason}")), "{shown:?}");
    }

    #[test]
    fn status_line_shows_task_n_of_m() {
        let mut t = Tracker::new(&[]);
        let mut p = progress::Parser::default();
        for e in p.line(
            "NOTE: Running task 2260 of 4521 (mc:sev:/w/meta-secret/recipes-kernel/linux/linux-amdese_git.bb:do_compile)",
        ) {
            t.event(&e);
        }
        assert_eq!(
            t.status(200).unwrap(),
            "task 2260/4521 [#########           ]  49% mc:sev:linux-amdese:do_compile"
        );
        assert_eq!(t.status(10).unwrap(), "task 2260/");
    }
}
