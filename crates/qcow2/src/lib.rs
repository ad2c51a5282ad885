//! The empty qcow2 image `qemu-img create` writes, byte for byte, and a validating qcow2 header
//! reader.
//!
//! - [`parse_size`] reads a size the way `qemu-img create` reads its size argument (`300G`,
//!   `1.5T`, `0x1000`), with the same rounding and the same rejections.
//! - [`empty_image`] and [`write_empty_image`] produce exactly the bytes of
//!   `qemu-img create -f qcow2 FILE SIZE` with qemu-img 10.0.2's default options: qcow2
//!   version 3 (compat 1.1), 64 KiB clusters, 16-bit refcounts, zlib, and the feature name
//!   table extension.
//! - [`read_header`] parses and validates the header cluster of any qcow2 version 2 or 3
//!   image, including its header extensions and backing file name, and returns what
//!   `qemu-img info` shows as an [`Info`].
//!
//! The format is specified in QEMU's `docs/interop/qcow2.txt`; doc comments cite its sections
//! in quotes ("Header", "Header extensions", ...).
//!
//! This crate never touches the file system, never spawns processes and never prints: callers
//! hand it bytes and values, and it returns values or writes into an `impl Write`.
//!
//! ```
//! use secretvm_qcow2::{empty_image, parse_size, read_header};
//!
//! let size = parse_size("300G")?;
//! let image = empty_image(size)?;
//! assert_eq!(image.len(), 201_408);
//!
//! let info = read_header(&image, image.len() as u64)?;
//! assert_eq!(info.virtual_size, 300 << 30);
//! assert_eq!(info.cluster_size, 65536);
//! assert_eq!(info.compat, "1.1");
//! assert_eq!(info.l1_size, 600);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Unit tests sit next to the code they test; `tests.rs` checks the reader against the
//! reference image and a list of malformed headers, and `qemu_tests.rs` cross-checks
//! everything against a live `qemu-img` when one is installed.

mod create;
mod error;
mod format;
mod read;
mod size;

#[cfg(test)]
mod qemu_tests;
#[cfg(test)]
mod tests;

pub use create::{MAX_VIRTUAL_SIZE, empty_image, empty_image_len, write_empty_image};
pub use error::{Error, Result};
pub use read::{CompressionType, Encryption, FeatureKind, FeatureName, Info, read_header};
pub use size::parse_size;
