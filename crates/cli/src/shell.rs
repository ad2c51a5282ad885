//! `secretvm shell [--machine NAME]... [--offline] [-- COMMAND...]`: a command, or an
//! interactive bash, in the build environment a build's bitbake runs in.
//!
//! The setup is the build's own (`build::prepare`): the same engine, preflight checks, lock,
//! layer checkouts, freshly regenerated `conf/` for the selected machines, builder image,
//! mounts, build user and environment allowlist (plus `TERM`). Then the command runs in
//! poky's build environment (`oe-init-build-env`: the build directory, bitbake on `PATH`)
//! attached to this terminal, for what a build does not do: `bitbake -e`, `bitbake -f -c
//! compile <recipe>`, `bitbake-layers`, reading a task's work directory. The network is that of a
//! build's fetch run; `--offline` gives that of its build run (`BB_NO_NETWORK=1`, and no
//! network in a container), to reproduce a failure of that run.
//!
//! The exit status is the command's (128 + N when signal N ended it).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use secretvm_yocto::runner::{self, Engine, Exit, Network};

use crate::build::{Prepared, Setup, prepare, read_config};

/// `secretvm shell`.
#[derive(Debug, Args)]
pub(crate) struct ShellArgs {
    #[command(flatten)]
    pub(crate) setup: Setup,
    /// The network of a build's second run: `BB_NO_NETWORK=1`, and no network in a container
    /// unless the config's team caches are on the network [default: the engine's network, as
    /// in the fetch run].
    #[arg(long)]
    pub(crate) offline: bool,
    /// The command and its arguments, after `--`; each word reaches the command as it is,
    /// without a shell (use `-- bash -c '...'` for a pipeline) [default: an interactive bash].
    #[arg(last = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

/// Runs `secretvm shell`; the exit code is the command's.
#[allow(clippy::print_stderr)]
pub(crate) fn run(args: &ShellArgs) -> Result<ExitCode> {
    let (config, config_name) = read_config(&args.setup.config)?;
    let names: Vec<&str> = args.setup.machines.iter().map(String::as_str).collect();
    let config = config.select(&names, &[])?.with_build_dir(&args.setup.build_dir)?;
    let Prepared { runner, user, workspace } = prepare(&args.setup, &config, &config_name)?;
    let mut inv = runner::shell_invocation(
        &config,
        &workspace,
        &args.command,
        runner.engine,
        user,
        &runner.host.vars,
    );
    if args.offline {
        inv = runner::without_network(inv, &config.cache);
    }
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let network = match (args.offline, inv.network) {
        (false, _) => "with the network",
        (true, Network::None) if runner.engine != Engine::Native => {
            "BB_NO_NETWORK=1, no network in the container"
        }
        (true, _) => "BB_NO_NETWORK=1, the network kept",
    };
    match args.command.is_empty() {
        true => eprintln!("shell: bash in {}/, {network}; `exit` leaves it", config.build_dir),
        false => {
            let words: Vec<String> = args.command.iter().map(|w| runner::quote(w)).collect();
            eprintln!("shell: {} in {}/, {network}", words.join(" "), config.build_dir);
        }
    }
    let exit = runner.attach(&inv, tty)?;
    Ok(ExitCode::from(exit_code(exit)))
}

/// The shell convention: a code as it is (truncated to 8 bits, as the kernel does), a signal
/// as 128 + its number.
fn exit_code(exit: Exit) -> u8 {
    let code = match exit {
        Exit::Code(code) => code,
        Exit::Signal(signal) => 128 + signal,
    };
    (code & 0xff) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(Exit::Code(0)), 0);
        assert_eq!(exit_code(Exit::Code(7)), 7);
        assert_eq!(exit_code(Exit::Code(256)), 0);
        assert_eq!(exit_code(Exit::Signal(9)), 137);
    }
}
