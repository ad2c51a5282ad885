//! `secretvm_yocto::progress` on bitbake output captured from real runs (`fixtures/knotty-*.log`,
//! how each was made is in `fixtures/README.md`).
//!
//! Every expectation comes from the log itself, read here with plain string scans that share
//! nothing with the parser, or from bitbake's own closing summaries:
//!
//! - each `NOTE: Running [noexec |setscene ]task N of M (<task>)` line is one task event with
//!   that kind, N, M and task string, in the same order;
//! - the recipe of a task event (with `-native` for a native variant) begins the `PN-PV-PR`
//!   of one of bitbake's own `NOTE: recipe PN-PV-PR: task do_x: Started` lines after the start
//!   line (only begins: PN may extend the file's name, as `binutils-cross-x86_64` does; one of:
//!   with several threads the Started lines of tasks started together come in any order);
//! - the failed tasks and their log paths are exactly the entries of bitbake's
//!   `Summary: N task(s) failed:` block, N of them, and every `Logfile of failure stored in:`
//!   and `Task (...) failed with exit code` line names one of them;
//! - the `Tasks Summary` totals are the numbers in that line; the number attempted equals the
//!   number of (non-setscene) task start lines plus the number that did not need to be rerun,
//!   and the number failed equals the `Summary:` count;
//! - the warning and error counts equal bitbake's `Summary: There were N ...` lines.

use secretvm_testkit::workspace;
use secretvm_yocto::progress::{
    Event, Parser, RefusalReason, SstateRefusal, TaskKind, TaskRef, sstate_refusal,
};

fn fixture(name: &str) -> String {
    let path = workspace().join("crates/yocto/tests/fixtures").join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

fn events(text: &str) -> Vec<Event> {
    let mut p = Parser::default();
    let mut out: Vec<Event> = text.lines().flat_map(|l| p.line(l)).collect();
    out.extend(p.finish());
    out
}

/// The task string bitbake printed, put back together from a parsed [`TaskRef`].
fn task_string(t: &TaskRef) -> String {
    let mut s = String::new();
    if let Some(mc) = &t.mc {
        s.push_str(&format!("mc:{mc}:"));
    }
    if let Some(v) = &t.variant {
        s.push_str(&format!("virtual:{v}:"));
    }
    s.push_str(&format!("{}:{}", t.file, t.task));
    s
}

/// A task start line, as the test reads it: kind, N, M and the text between the parentheses.
#[derive(Debug, PartialEq)]
struct Started {
    kind: TaskKind,
    current: u64,
    total: u64,
    task: String,
}

fn scan_started(text: &str) -> Vec<Started> {
    let kinds = [
        ("NOTE: Running task ", TaskKind::Task),
        ("NOTE: Running noexec task ", TaskKind::Noexec),
        ("NOTE: Running setscene task ", TaskKind::Setscene),
    ];
    let mut out = Vec::new();
    for line in text.lines() {
        for (prefix, kind) in kinds {
            let Some(rest) = line.strip_prefix(prefix) else { continue };
            let words: Vec<&str> = rest.splitn(4, ' ').collect();
            assert_eq!(words[1], "of", "{line}");
            let task = words[3].trim_start_matches('(').trim_end_matches(')');
            out.push(Started {
                kind,
                current: words[0].parse().unwrap(),
                total: words[2].parse().unwrap(),
                task: task.to_owned(),
            });
        }
    }
    out
}

/// A failed task string and its `log:` path.
type Failed = (String, Option<String>);

/// bitbake's `Summary: N task(s) failed:` block: N and the (task, log) entries under it.
fn scan_failed_block(text: &str) -> Option<(u64, Vec<Failed>)> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("Summary: ") && l.ends_with(" failed:"))?;
    let count = lines[start].split(' ').nth(1)?.parse().ok()?;
    let mut entries: Vec<Failed> = Vec::new();
    for line in &lines[start + 1..] {
        if let Some(log) = line.strip_prefix("    log: ") {
            entries.last_mut()?.1 = Some(log.to_owned());
        } else if let Some(task) = line.strip_prefix("  ") {
            entries.push((task.to_owned(), None));
        } else {
            break;
        }
    }
    Some((count, entries))
}

/// The numbers of a line, in order.
fn numbers(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect()
}

fn line_starting<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(prefix))
}

/// What every capture must satisfy; returns the events for fixture-specific checks.
fn check_capture(name: &str) -> (String, Vec<Event>) {
    let text = fixture(name);
    let got = events(&text);

    // Task starts: same kind, numbers and task string, same order.
    let scanned = scan_started(&text);
    let parsed: Vec<Started> = got
        .iter()
        .filter_map(|e| match e {
            Event::TaskStarted { kind, current, total, task } => Some(Started {
                kind: *kind,
                current: *current,
                total: *total,
                task: task_string(task),
            }),
            _ => None,
        })
        .collect();
    assert_eq!(parsed, scanned, "{name}: task starts");

    // The recipe is the PN of bitbake's own `NOTE: recipe PN-PV-PR: task do_x: Started` line,
    // which follows the task's start line (noexec tasks have none).
    let lines: Vec<&str> = text.lines().collect();
    let mut next = 0;
    for e in &got {
        let Event::TaskStarted { task, kind: TaskKind::Task, current, .. } = e else {
            continue;
        };
        let pn = match &task.variant {
            Some(v) => format!("{}-{v}", task.recipe),
            None => task.recipe.clone(),
        };
        let start = lines[next..]
            .iter()
            .position(|l| l.starts_with(&format!("NOTE: Running task {current} of ")))
            .map(|i| next + i)
            .unwrap_or_else(|| panic!("{name}: task {current} has no start line"));
        let suffix = format!(": task {}: Started", task.task);
        // With several bitbake threads the Started lines of tasks started together come in any
        // order, so the task's own is one of the Started lines after its start line.
        // PV may hold dashes (`edk2-3a3b12cb`) and PN may extend the file's name
        // (`binutils-cross-x86_64` from binutils-cross_2.42.bb), so only the start is compared.
        let found = lines[start..]
            .iter()
            .filter_map(|l| l.strip_prefix("NOTE: recipe ")?.strip_suffix(suffix.as_str()))
            .any(|started| started.starts_with(&format!("{pn}-")));
        assert!(
            found,
            "{name}: task {current} of {}: no `{pn}-...: task {}: Started` line after it",
            task.file, task.task
        );
        next = start + 1;
    }

    // The failed tasks are bitbake's own summary block.
    let failed: Vec<Failed> = got
        .iter()
        .filter_map(|e| match e {
            Event::FailedTask { task, log } => Some((task_string(task), log.clone())),
            _ => None,
        })
        .collect();
    match scan_failed_block(&text) {
        Some((count, entries)) => {
            assert_eq!(failed, entries, "{name}: failed tasks");
            assert_eq!(failed.len() as u64, count, "{name}: `Summary: {count} ... failed:`");
        }
        None => assert!(failed.is_empty(), "{name}: failed tasks without a summary block"),
    }
    for e in &got {
        match e {
            Event::FailureLog { path } => assert!(
                failed.iter().any(|(_, log)| log.as_deref() == Some(path.as_str())),
                "{name}: failure log {path} is not in the summary"
            ),
            Event::TaskFailed { task, .. } => assert!(
                failed.iter().any(|(t, _)| *t == task_string(task)),
                "{name}: failed task {} is not in the summary",
                task_string(task)
            ),
            _ => {}
        }
    }
    let failure_lines =
        text.lines().filter(|l| l.starts_with("ERROR: Logfile of failure stored in: ")).count();
    let failure_events = got.iter().filter(|e| matches!(e, Event::FailureLog { .. })).count();
    assert_eq!(failure_events, failure_lines, "{name}: failure logs");

    // The totals.
    let summaries: Vec<&Event> =
        got.iter().filter(|e| matches!(e, Event::TasksSummary { .. })).collect();
    match line_starting(&text, "NOTE: Tasks Summary: ") {
        Some(line) => {
            let n = numbers(line);
            let failed_n = if line.ends_with("all succeeded.") { 0 } else { n[2] };
            assert_eq!(
                summaries,
                [&Event::TasksSummary { attempted: n[0], not_rerun: n[1], failed: failed_n }],
                "{name}: {line}"
            );
            let runs = scanned.iter().filter(|s| s.kind != TaskKind::Setscene).count() as u64;
            // Tasks that did not need to be rerun (covered by setscene or current) count as
            // attempted without a start line; every other attempted task has one.
            assert_eq!(n[0], runs + n[1], "{name}: attempted tasks against task start lines");
            let block = scan_failed_block(&text).map_or(0, |(count, _)| count);
            assert_eq!(failed_n, block, "{name}: failed tasks against the Summary block");
        }
        None => assert!(summaries.is_empty(), "{name}: a Tasks Summary event without the line"),
    }

    // The message counts.
    for (what, event_count) in [("WARNING", warning_count(&got)), ("ERROR", error_count(&got))] {
        let line = text
            .lines()
            .find(|l| l.starts_with("Summary: There w") && l.contains(&format!(" {what} message")));
        assert_eq!(event_count, line.map(|l| numbers(l)[0]), "{name}: {what} count");
    }
    (text, got)
}

fn warning_count(events: &[Event]) -> Option<u64> {
    events.iter().find_map(|e| match e {
        Event::WarningCount { count } => Some(*count),
        _ => None,
    })
}

fn error_count(events: &[Event]) -> Option<u64> {
    events.iter().find_map(|e| match e {
        Event::ErrorCount { count } => Some(*count),
        _ => None,
    })
}

/// The parse summary: the seven numbers of bitbake's `Parsing of ... complete` line.
fn check_parse_complete(name: &str, text: &str, got: &[Event]) {
    let line =
        line_starting(text, "Parsing of ").unwrap_or_else(|| panic!("{name}: no parse line"));
    let n = numbers(line);
    let expected = Event::ParseComplete {
        files: n[0],
        cached: n[1],
        parsed: n[2],
        targets: n[3],
        skipped: n[4],
        masked: n[5],
        errors: n[6],
    };
    assert!(got.contains(&expected), "{name}: {line}");
}

/// The messages of the `Event::Error`s, and the `ERROR: ` lines that are not a failure log or
/// a failed task, read from the text.
fn errors(text: &str, got: &[Event]) -> (Vec<String>, Vec<String>) {
    let parsed = got
        .iter()
        .filter_map(|e| match e {
            Event::Error { message } => Some(message.clone()),
            _ => None,
        })
        .collect();
    let scanned = text
        .lines()
        .filter_map(|l| l.strip_prefix("ERROR: "))
        .filter(|m| !m.starts_with("Logfile of failure stored in: ") && !m.starts_with("Task ("))
        .map(str::to_owned)
        .collect();
    (parsed, scanned)
}

fn continued(got: &[Event]) -> Vec<&str> {
    got.iter()
        .filter_map(|e| match e {
            Event::Continued { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// `secretvm build --engine native` on a host without network and without `BB_NO_NETWORK`:
/// oe-core's sanity checker stops bitbake before it parses a recipe. The reason is on the
/// lines under the `ERROR:` line.
#[test]
fn sanity_failure_without_network() {
    let (text, got) = check_capture("knotty-sanity-offline.log");
    let (parsed, scanned) = errors(&text, &got);
    assert_eq!(parsed, scanned);
    assert_eq!(parsed.len(), 1);
    // Every non-blank line between the ERROR line and bitbake's closing summary.
    let under: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("ERROR: "))
        .skip(1)
        .take_while(|l| !l.starts_with("Summary: "))
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(continued(&got), under);
    assert!(under.iter().any(|l| l.contains("connectivity.html")), "{under:?}");
    assert!(!got.iter().any(|e| matches!(e, Event::ParseComplete { .. })));
}

/// The flow's own build (`secretvm build --engine native`, all targets, no lock file): parsing
/// succeeds, then bitbake stops at the first target without a provider, before any task; the
/// skipped providers and why are the lines under the error, up to the parse summary.
#[test]
fn no_provider_stops_the_build_before_any_task() {
    let (text, got) = check_capture("knotty-no-provider.log");
    check_parse_complete("knotty-no-provider.log", &text, &got);
    let (parsed, scanned) = errors(&text, &got);
    assert_eq!(parsed, scanned);
    let under: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("ERROR: "))
        .skip(1)
        .take_while(|l| !l.starts_with("Parsing of "))
        .collect();
    assert_eq!(continued(&got), under);
    assert!(
        under
            .iter()
            .any(|l| l.starts_with("linux-yocto-dev PROVIDES virtual/kernel but was skipped")),
        "{under:?}"
    );
    assert!(!got.iter().any(|e| matches!(e, Event::TaskStarted { .. })));
}

/// `bitbake mc:tdx:virtual/ovmf` without network (`BB_NO_NETWORK=1`), without `-k`: the first
/// `do_fetch` that needs a download fails and bitbake stops.
#[test]
fn a_fetch_failure_stops_the_build() {
    let name = "knotty-ovmf.log";
    let (text, got) = check_capture(name);
    check_parse_complete(name, &text, &got);
    let (count, entries) = scan_failed_block(&text).expect("a Summary block");
    assert_eq!(count, 1);
    // The Summary entry is the task of the `Task (...) failed` line, and its log the path of
    // the `Logfile of failure` line.
    let failed_line = text.lines().find_map(|l| l.strip_prefix("ERROR: Task (")).unwrap();
    let failed_task = &failed_line[..failed_line.find(") failed with exit code").unwrap()];
    let log_line = line_starting(&text, "ERROR: Logfile of failure stored in: ").unwrap();
    let log = log_line.rsplit(' ').next().unwrap();
    assert_eq!(entries, [(failed_task.to_owned(), Some(log.to_owned()))]);
    assert!(failed_task.ends_with(":do_fetch"), "{failed_task}");
    let failed: Vec<&Event> =
        got.iter().filter(|e| matches!(e, Event::TaskFailed { .. })).collect();
    match failed.as_slice() {
        [Event::TaskFailed { task, exit_code }] => {
            assert_eq!(task_string(task), failed_task);
            assert_eq!(exit_code, "1");
        }
        other => panic!("{other:?}"),
    }
    // The fetcher's own message is an error of its own.
    let (parsed, scanned) = errors(&text, &got);
    assert_eq!(parsed, scanned);
    assert!(parsed.iter().any(|m| m.contains("do_fetch: Bitbake Fetcher Error: NetworkAccess")));
}

/// All 18 targets the config named when this was captured (gcp-tdx's kernel and initramfs were
/// still targets of their own, now they come in as dependencies of its disks), with `-k`: the targets without providers are dropped with
/// errors, every task that can run runs, every `do_fetch` that needs a download fails.
#[test]
fn keep_going_build() {
    let name = "knotty-build-k.log";
    let (text, got) = check_capture(name);
    check_parse_complete(name, &text, &got);
    let (parsed, scanned) = errors(&text, &got);
    assert_eq!(parsed, scanned);
    let (count, entries) = scan_failed_block(&text).expect("a Summary block");
    assert!(count > 1, "{count}");
    assert!(entries.iter().all(|(_, log)| log.is_some()), "every failed task has a log");
    let warnings: Vec<&Event> = got.iter().filter(|e| matches!(e, Event::Warning { .. })).collect();
    let warning_lines = text.lines().filter(|l| l.starts_with("WARNING: ")).count();
    assert_eq!(warnings.len(), warning_lines);
}

/// The fetch run of `secretvm build` (`bitbake --runall=fetch mc:sev:virtual/kernel`, through
/// the Docker runner), with `BB_NO_NETWORK=1` from the host: only `do_fetch` and the
/// `do_recipe_qa` scarthgap runs before it are queued, and the first downloads fail.
#[test]
fn runall_fetch_queues_only_fetch_tasks() {
    let name = "knotty-runall-fetch.log";
    let (text, got) = check_capture(name);
    check_parse_complete(name, &text, &got);
    let started = scan_started(&text);
    assert!(!started.is_empty(), "{name}: no task started");
    for s in &started {
        assert!(
            s.task.ends_with(":do_fetch") || s.task.ends_with(":do_recipe_qa"),
            "{name}: {} is neither do_fetch nor do_recipe_qa",
            s.task
        );
    }
    // The queue: every task of the run counted in `Running task N of M`.
    let total = started[0].total;
    assert!(started.iter().all(|s| s.total == total), "{name}: one queue");
    let (count, entries) = scan_failed_block(&text).expect("a Summary block");
    assert_eq!(entries.len() as u64, count);
    assert!(entries.iter().all(|(task, _)| task.ends_with(":do_fetch")), "{entries:?}");
    let (parsed, scanned) = errors(&text, &got);
    assert_eq!(parsed, scanned);
}

/// The signed-sstate refusals of a real run (`knotty-sstate-signatures.log`, whose capture
/// deleted the `do_deploy` object's signature and changed a byte of the
/// `do_populate_sysroot` object): the refused tasks are exactly those bitbake itself says it
/// ran instead of their setscene (`Setscene task (...) failed ... - real task will be run
/// instead`), in that order, each refusal names an object of its task, and the reasons are
/// what the capture did to each object. No warning of the other captures is a refusal.
#[test]
fn sstate_signature_refusals_are_recognised() {
    let refusals = |text: &str| -> Vec<SstateRefusal> {
        events(text)
            .iter()
            .filter_map(|e| match e {
                Event::Warning { message } => sstate_refusal(message),
                _ => None,
            })
            .collect()
    };
    let text = fixture("knotty-sstate-signatures.log");
    let rerun: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("WARNING: Setscene task ("))
        .filter_map(|rest| rest.split_once(") failed with exit code"))
        .filter_map(|(task, _)| task.rsplit(':').next())
        .filter_map(|task| task.strip_suffix("_setscene"))
        .collect();
    assert_eq!(rerun, ["do_populate_sysroot", "do_deploy"]);
    let found = refusals(&text);
    assert_eq!(found.len(), rerun.len(), "{found:?}");
    for (refusal, task) in found.iter().zip(&rerun) {
        assert_eq!(refusal.task, format!("sst-hello-1.0-r0 {task}_setscene"));
        let object = format!("_{}.tar.zst", task.trim_start_matches("do_"));
        assert!(refusal.package.starts_with("/tmp/sst/sstate-Fx/"), "{refusal:?}");
        assert!(refusal.package.ends_with(&object), "{refusal:?}");
        let reason =
            if *task == "do_deploy" { RefusalReason::Unsigned } else { RefusalReason::NotVerified };
        assert_eq!(refusal.reason, reason, "{task}");
    }
    for name in ["knotty-build-k.log", "knotty-ovmf.log", "knotty-runall-fetch.log"] {
        assert_eq!(refusals(&fixture(name)), [], "{name}");
    }
}
