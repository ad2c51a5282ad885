//! Starting processes: the one function that calls `Command::new` ([`command`]), and the three
//! ways we run things: [`capture`] (short commands whose output we read), [`stream`] (long
//! ones whose lines go to a callback and a raw log as they come) and [`attached`] (the command
//! of `secretvm shell`, on this process's own standard streams).
//!
//! Except for [`attached`], standard input is closed or fed from memory: nothing waits on a
//! terminal.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;

use super::{Error, Exit, Result, Spawn};

/// How many of the last output lines a [`Error::Failed`] message carries.
const TAIL_LINES: usize = 30;

/// Where programs come from: the `PATH` to search and the variables a build may take from.
/// [`Host::from_env`] reads this process's environment; tests build one by hand (for example
/// with a `PATH` that hides the container engines).
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// The `PATH` searched for programs.
    pub path: OsString,
    /// The variables [`super::build_env`] filters.
    pub vars: Vec<(String, String)>,
}

impl Host {
    /// This process's `PATH` and (UTF-8) environment variables.
    pub fn from_env() -> Host {
        Host {
            path: std::env::var_os("PATH").unwrap_or_default(),
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// The first executable file called `program` on [`Host::path`]; a program containing `/`
    /// is taken as it is.
    pub fn find(&self, program: &str) -> Option<PathBuf> {
        if program.contains('/') {
            return Some(PathBuf::from(program));
        }
        std::env::split_paths(&self.path).map(|d| d.join(program)).find(|p| {
            std::fs::metadata(p).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    }

    fn resolve(&self, program: &str) -> Result<PathBuf> {
        self.find(program).ok_or_else(|| Error::NotFound {
            program: program.to_owned(),
            path: self.path.to_string_lossy().into_owned(),
        })
    }
}

/// A process's standard streams.
#[derive(Debug, Clone, Copy)]
enum Streams {
    /// Output and error piped to us; input piped (to be fed) or closed.
    Piped {
        /// Input is fed from memory.
        stdin: bool,
    },
    /// This process's own input, output and error.
    Inherited,
}

/// The one place a process is created: the program resolved on the host's `PATH`, the
/// environment and working directory of `spawn`, and its standard streams.
#[allow(clippy::disallowed_methods)]
fn command(spawn: &Spawn, host: &Host, streams: Streams) -> Result<Command> {
    let program = host.resolve(&spawn.program)?;
    let mut cmd = Command::new(program);
    cmd.args(&spawn.args);
    if let Some(env) = &spawn.env {
        cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    }
    cmd.envs(spawn.set.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = &spawn.cwd {
        cmd.current_dir(cwd);
    }
    match streams {
        Streams::Piped { stdin } => {
            cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() });
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        Streams::Inherited => {
            cmd.stdin(Stdio::inherit()).stdout(Stdio::inherit()).stderr(Stdio::inherit());
        }
    }
    Ok(cmd)
}

fn start(spawn: &Spawn, host: &Host, stdin: Option<&[u8]>) -> Result<Child> {
    let mut child = command(spawn, host, Streams::Piped { stdin: stdin.is_some() })?
        .spawn()
        .map_err(|source| Error::Spawn { program: spawn.program.clone(), source })?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let bytes = bytes.to_vec();
        // A reader that stops early closes the pipe; its exit status tells what happened.
        thread::spawn(move || pipe.write_all(&bytes));
    }
    Ok(child)
}

fn exit_of(status: std::process::ExitStatus) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::Code(-1),
    }
}

/// What a short command printed.
#[derive(Debug)]
pub(crate) struct Captured {
    pub(crate) exit: Exit,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Captured {
    /// `Ok(stdout)` when it succeeded, else [`Error::Failed`] with its stderr.
    pub(crate) fn ok(self, spawn: &Spawn) -> Result<String> {
        if self.exit.success() {
            return Ok(self.stdout);
        }
        let output = if self.stderr.trim().is_empty() { &self.stdout } else { &self.stderr };
        Err(Error::Failed { command: spawn.to_string(), exit: self.exit, output: tail(output) })
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

/// Runs `spawn` to the end and returns its exit and output (as lossy UTF-8).
pub(crate) fn capture(spawn: &Spawn, host: &Host, stdin: Option<&[u8]>) -> Result<Captured> {
    let mut child = start(spawn, host, stdin)?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let stderr = child.stderr.take();
    let reader = thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut s) = stderr {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_end(&mut out);
    }
    err.extend(reader.join().unwrap_or_default());
    let status =
        child.wait().map_err(|source| Error::Spawn { program: spawn.program.clone(), source })?;
    Ok(Captured {
        exit: exit_of(status),
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

/// Runs `spawn`, calling `on_line` for each line of stdout and stderr as it arrives (without
/// its line ending) and appending the raw bytes to `log` (created or truncated). Returns the
/// exit and the last lines printed.
pub(crate) fn stream(
    spawn: &Spawn,
    host: &Host,
    stdin: Option<&[u8]>,
    log: Option<&Path>,
    on_line: &mut dyn FnMut(&str),
) -> Result<(Exit, String)> {
    let mut log_file = match log {
        Some(path) => Some(File::create(path).map_err(|source| Error::Io {
            what: "cannot create the log",
            path: path.to_path_buf(),
            source,
        })?),
        None => None,
    };
    let mut child = start(spawn, host, stdin)?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut readers = Vec::new();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for pipe in pipes.into_iter().flatten() {
        let tx = tx.clone();
        readers.push(thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        }));
    }
    drop(tx);
    let mut last: Vec<String> = Vec::new();
    let mut log_error = None;
    for raw in rx {
        if let Some(file) = log_file.as_mut()
            && let Err(source) = file.write_all(&raw)
        {
            log_error.get_or_insert(source);
        }
        let text = String::from_utf8_lossy(&raw);
        let line = text.trim_end_matches(['\n', '\r']);
        on_line(line);
        if last.len() == TAIL_LINES {
            last.remove(0);
        }
        last.push(line.to_owned());
    }
    for r in readers {
        let _ = r.join();
    }
    let status =
        child.wait().map_err(|source| Error::Spawn { program: spawn.program.clone(), source })?;
    if let (Some(source), Some(path)) = (log_error, log) {
        return Err(Error::Io { what: "cannot write the log", path: path.to_path_buf(), source });
    }
    Ok((exit_of(status), last.join("\n")))
}

/// Runs `spawn` on this process's standard input, output and error, and returns how it ended.
pub(crate) fn attached(spawn: &Spawn, host: &Host) -> Result<Exit> {
    let status = command(spawn, host, Streams::Inherited)?
        .status()
        .map_err(|source| Error::Spawn { program: spawn.program.clone(), source })?;
    Ok(exit_of(status))
}
