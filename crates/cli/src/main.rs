//! `secretvm`: parse the command line, turn it into library calls, print the result, and map
//! errors to exit codes (0 success, 1 failure or a negative verdict, 2 usage error).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bitbake;
mod build;
mod cli;
mod compare;
mod iso;
mod list;
mod lock;
mod measure;
mod release;
mod shell;
mod verify;

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{Cli, Command, Format, Pack, Qcow2};
use secretvm_pack::initramfs;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("secretvm: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// A reader that closed our stdout early (`secretvm ... | head`) is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Runs one command; the exit code is 0 unless the command reports a negative verdict (1).
fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Pack(Pack::Initramfs(args)) => {
            let nodes = match (&args.from_dir, &args.spec) {
                (Some(dir), _) => secretvm_artifact::load_tree(dir)?,
                (None, Some(spec)) => {
                    secretvm_artifact::load_spec(spec, u64::from(args.source_date_epoch))?
                }
                (None, None) => unreachable!("clap requires one input"),
            };
            let count = nodes.len();
            let options = initramfs::Options {
                epoch: args.source_date_epoch,
                owner: args.owner_root.then_some((0, 0)),
                gzip_level: (!args.no_gzip).then_some(args.level),
            };
            let size = secretvm_artifact::write_initramfs(nodes, &options, &args.output)?;
            eprintln!("wrote {} ({count} entries, {size} bytes)", args.output.display());
        }
        Command::Pack(Pack::CpioList(args)) => {
            let (_, file) = secretvm_artifact::open_file(&args.archive)
                .with_context(|| format!("cannot open {}", args.archive.display()))?;
            let stdout = io::stdout().lock();
            list::list(file, args.format, stdout)
                .with_context(|| format!("cannot list {}", args.archive.display()))?;
        }
        Command::Pack(Pack::Iso(args)) => iso::run_iso(&args)?,
        Command::Pack(Pack::GcpTar(args)) => iso::run_gcp_tar(&args)?,
        Command::Qcow2(Qcow2::Create(args)) => {
            let size = secretvm_qcow2::parse_size(&args.size)
                .with_context(|| format!("invalid size {:?}", args.size))?;
            secretvm_artifact::create_qcow2(&args.file, size)?;
            eprintln!("wrote {} (qcow2, virtual size {size} bytes)", args.file.display());
        }
        Command::Qcow2(Qcow2::Info(args)) => {
            let info = secretvm_artifact::qcow2_info(&args.file)?;
            let mut out = io::stdout().lock();
            match args.format {
                Format::Json => {
                    serde_json::to_writer_pretty(&mut out, &info)?;
                    writeln!(out)?;
                }
                Format::Text => {
                    let value = serde_json::to_value(&info)?;
                    writeln!(out, "file: {}", args.file.display())?;
                    if let serde_json::Value::Object(fields) = value {
                        for (key, value) in fields {
                            writeln!(out, "{key}: {value}")?;
                        }
                    }
                }
            }
        }
        Command::Measure(cmd) => measure::run(cmd)?,
        Command::Verify(cmd) => return verify::run(cmd),
        Command::Build(args) => build::run(&args)?,
        Command::Shell(args) => return shell::run(&args),
        Command::Lock(args) => lock::run(&args)?,
        Command::Release(args) => release::run(&args)?,
        Command::Compare(args) => return compare::run(&args),
    }
    Ok(ExitCode::SUCCESS)
}
