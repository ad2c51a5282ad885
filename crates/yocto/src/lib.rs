//! The Yocto build of the secretvm images: the build config, the lock file, the bitbake
//! configuration we generate, the runner that drives bitbake in the builder container,
//! bitbake's progress output, and the collection of the artifacts with their manifest.
//!
//! - [`config`] parses and validates `yocto/secretvm.toml`: layer repositories with exact
//!   commits, BBLAYERS order, the builder container, machines with their targets and
//!   artifacts, optional team caches.
//! - [`lock`] models the lock file (repository commits, resolved SRCREVs, builder image
//!   digest), parses and renders it, and compares it with a config.
//! - [`conf`] renders `conf/auto.conf`, `conf/multiconfig/<machine>.conf`, the BBLAYERS list
//!   and the SRCREV include from a config and a lock; the files are regenerated from scratch on
//!   every run.
//! - [`layer`] checks the text of the `meta-secret/` layer: pinned SRCREVs, clean production
//!   images, fixed wks UUIDs, machine confs matching the config, no network during tasks.
//! - [`progress`] turns bitbake's (knotty, non-TTY) line output into [`progress::Event`]s.
//! - [`collect`] copies a build's artifacts out of the deploy directories (through their stable
//!   links), makes the ISOs, GCP tarballs and the encrypted-fs disk, and writes the manifest;
//!   it touches files only through `secretvm-artifact`, plus resolving the deploy links.
//! - [`manifest`] renders `sha256sum.txt`, `digest.txt` and `manifest.json` and computes each
//!   machine's expected measurements with `secretvm-measure` (pure).
//! - [`release`] lays out a complete build under upstream's release names
//!   (`<stem>-<tag>-<machine><extension>`) in one new directory, each copy checked against the
//!   build's `sha256sum.txt`.
//! - [`runner`] starts processes (container engines, git, bitbake): argv per engine, the
//!   builder image, preflight checks and the layer checkouts.
//! - [`check_parse`] is the body of the `yocto_parse` fuzz target: every parser above on
//!   arbitrary bytes, with the properties their outputs must keep.
//!
//! Apart from [`collect`] and [`release`] (files, through `secretvm-artifact`) and [`runner`]
//! (processes and the files they need), nothing here touches the file system, spawns a process
//! or prints: parsers take `&str` (and a file name for messages), renderers return `String`s.
//!
//! ```
//! let text = include_str!("../../../yocto/secretvm.toml");
//! let config = secretvm_yocto::config::parse("yocto/secretvm.toml", text)?;
//! assert_eq!(config.machines.len(), 3);
//! let tdx = secretvm_yocto::conf::multiconfig_conf(config.machine("tdx")?);
//! assert!(tdx.contains("MACHINE = \"secret-vm-tdx\"\n"));
//! # Ok::<(), secretvm_yocto::Error>(())
//! ```

pub mod collect;
pub mod conf;
pub mod config;
mod error;
mod fuzz;
pub mod layer;
pub mod lock;
pub mod manifest;
pub mod progress;
pub mod release;
pub mod runner;
pub mod sbom;

pub use error::{Error, Result};
pub use fuzz::check_parse;

#[cfg(test)]
mod tests;
