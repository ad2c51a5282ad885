//! Boot-artifact formats, as pure functions over bytes and streams.
//!
//! - [`cpio`]: a streaming reader and writer for the SVR4 "newc" (`070701`) and "crc" (`070702`)
//!   cpio formats, hardened against hostile archives.
//! - [`gcp`]: the Google Compute Engine import tarball (`disk.raw` in a deterministic tar.gz).
//! - [`initramfs`]: a reproducible initramfs (sorted, renumbered, clamped, gzip without
//!   timestamps) from a tree description.
//! - [`iso`]: an ISO 9660 level-3 image with Rock Ridge, laid out from a cpio archive's headers
//!   and filled with data copied straight from the archive (no extraction, byte-stable).
//! - [`time`]: UTC calendar dates from Unix seconds.
//! - [`spec`]: the Linux kernel's `gen_init_cpio` description format.
//!
//! This crate never touches the file system, never spawns processes and never prints:
//! callers hand it `Read`/`Write` streams and plain values (see `ARCHITECTURE.md`).

pub mod cpio;
pub mod gcp;
pub mod initramfs;
pub mod iso;
pub mod spec;
pub mod time;
