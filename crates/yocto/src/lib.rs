//! The Yocto build of the secretvm images, pure part: the build config, the lock file, the
//! bitbake configuration we generate, and bitbake's progress output.
//!
//! - [`config`] parses and validates `yocto/secretvm.toml`: layer repositories with exact
//!   commits, BBLAYERS order, the builder container, machines with their targets and
//!   artifacts, optional team caches.
//! - [`lock`] models the lock file (repository commits, resolved SRCREVs, builder image
//!   digest), parses and renders it, and compares it with a config.
//! - [`conf`] renders `conf/auto.conf`, `conf/multiconfig/<machine>.conf`, the BBLAYERS list
//!   and the SRCREV include from a config and a lock; the files are regenerated from scratch on
//!   every run.
//! - [`progress`] turns bitbake's (knotty, non-TTY) line output into [`progress::Event`]s.
//! - [`runner`] starts processes (container engines, git, bitbake): argv per engine, the
//!   builder image, preflight checks and the layer checkouts.
//!
//! Apart from [`runner`], nothing here touches the file system, spawns a process or prints: parsers take `&str` (and
//! a file name for messages), renderers return `String`s.
//!
//! ```
//! let text = include_str!("../../../yocto/secretvm.toml");
//! let config = secretvm_yocto::config::parse("yocto/secretvm.toml", text)?;
//! assert_eq!(config.machines.len(), 3);
//! let tdx = secretvm_yocto::conf::multiconfig_conf(config.machine("tdx")?);
//! assert!(tdx.contains("MACHINE = \"secret-vm-tdx\"\n"));
//! # Ok::<(), secretvm_yocto::Error>(())
//! ```

pub mod conf;
pub mod config;
mod error;
pub mod lock;
pub mod progress;
pub mod runner;

pub use error::{Error, Result};

#[cfg(test)]
mod tests;
