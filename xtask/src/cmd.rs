//! The one place xtask starts processes: every command is echoed, runs with an explicit working
//! directory, and a failure becomes an error that names the command and its exit status.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};

use anyhow::{Context, Result, bail};

/// Starts building a command `program` that will run in `dir`.
#[allow(clippy::disallowed_methods)]
pub(crate) fn new(program: impl AsRef<OsStr>, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir);
    cmd
}

/// Shows a command the way a user would type it.
pub(crate) fn display(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// Runs `cmd` with inherited stdio, echoing it first; fails unless it exits with status 0.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let status = status(cmd)?;
    if !status.success() {
        let shown = display(cmd);
        bail!("`{shown}` failed with {status}");
    }
    Ok(())
}

/// Runs `cmd` with inherited stdio, echoing it first, and returns how it ended.
pub(crate) fn status(cmd: &mut Command) -> Result<ExitStatus> {
    let shown = display(cmd);
    eprintln!("$ {shown}");
    cmd.status().with_context(|| format!("cannot start `{shown}`"))
}

/// Runs `cmd` and returns its stdout; stderr is kept for the error message.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let shown = display(cmd);
    let Output { status, stdout, stderr } =
        cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed with {status}: {}", String::from_utf8_lossy(&stderr).trim());
    }
    String::from_utf8(stdout).with_context(|| format!("`{shown}` printed non-UTF-8 output"))
}

/// Whether `program` is found on `PATH`.
pub(crate) fn on_path(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// Runs `cargo test` (or anything printing libtest's `test result:` lines) with its standard
/// output passed through line by line, and returns the passed and failed counts summed over every
/// test binary; fails like [`run`] when the command fails.
pub(crate) fn run_counting_tests(cmd: &mut Command) -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    let shown = display(cmd);
    eprintln!("$ {shown}");
    let mut child =
        cmd.stdout(Stdio::piped()).spawn().with_context(|| format!("cannot start `{shown}`"))?;
    let (mut passed, mut failed) = (0, 0);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("cannot read the test output")?;
            println!("{line}");
            if let Some(counts) = line.strip_prefix("test result: ") {
                for part in counts.split(['.', ';']).map(str::trim) {
                    let mut words = part.split(' ');
                    match (words.next().map(str::parse::<u64>), words.next()) {
                        (Some(Ok(n)), Some("passed")) => passed += n,
                        (Some(Ok(n)), Some("failed")) => failed += n,
                        _ => {}
                    }
                }
            }
        }
    }
    let status = child.wait().with_context(|| format!("cannot wait for `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed with {status} ({passed} passed, {failed} failed)");
    }
    Ok((passed, failed))
}
