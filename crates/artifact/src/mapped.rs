//! Input files as read-only memory maps, for the measurement inputs (firmware, kernels,
//! initrds) that are hashed once, front to back, and never changed.
//!
//! Why a map and not a read: reading a 12 MB kernel into a fresh buffer costs 7 to 11 ms on
//! the reference machine, almost all of it first-touch page faults on the new buffer; mapping
//! the page-cache pages costs about 1 ms (numbers in `ARCHITECTURE.md`). For
//! `secretvm measure tdx` that is a third of the run.
//!
//! What a map gives up, and what this module does about it:
//! - A file another process **changes** while it is mapped is seen changed, as with `read`
//!   at two different moments. [`MappedFile::ensure_unchanged`] compares size, modification
//!   and change times with those at open, so the caller can refuse a result computed while
//!   the file moved.
//! - A file another process **truncates** while it is mapped makes the next access to the
//!   lost pages raise `SIGBUS`, which ends the process. That is the one failure a map adds
//!   over `read`; it needs a concurrent writer to the release files being measured.
//! - Files that cannot be mapped (pipes, character devices, `/proc` files, empty files) are
//!   read into memory instead, so every path `read` accepts is accepted.
//!
//! This module is one of the two places in the workspace allowed `unsafe` (`xtask` tidy
//! checks the list): the one call that creates the map.
#![allow(unsafe_code)]

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::ops::Deref;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result, io_error};

/// A file's bytes, mapped or (where it cannot be mapped) read.
#[derive(Debug)]
pub struct MappedFile {
    path: PathBuf,
    file: File,
    at_open: Stamp,
    bytes: Bytes,
}

#[derive(Debug)]
enum Bytes {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

/// What [`MappedFile::ensure_unchanged`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        Stamp {
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

impl MappedFile {
    /// Opens `path` and maps it read-only (or reads it, for files that cannot be mapped).
    pub fn open(path: &Path) -> Result<MappedFile> {
        let mut file = File::open(path).map_err(io_error("open", path))?;
        let meta = file.metadata().map_err(io_error("read the metadata of", path))?;
        let at_open = Stamp::of(&meta);
        let bytes = if meta.is_file() && meta.len() > 0 {
            // SAFETY: the map is read-only and private, and lives no longer than `self`, which
            // also owns the file. Its contents can still change or vanish under us if another
            // process writes or truncates the file; the module documentation says what that
            // means and `ensure_unchanged` detects the first.
            // Not populated up front: the pages are faulted in by whichever thread hashes
            // them, so two files mapped one after the other are paged in side by side.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_error("map", path))?;
            Bytes::Mapped(map)
        } else {
            let mut buf = Vec::new();
            file.read_to_end(&mut buf).map_err(io_error("read", path))?;
            Bytes::Read(buf)
        };
        Ok(MappedFile { path: path.to_path_buf(), file, at_open, bytes })
    }

    /// The path the file was opened as.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails if the file's size, modification time or change time differ from when it was
    /// opened: whatever was computed from the bytes may mix two versions of the file.
    pub fn ensure_unchanged(&self) -> Result<()> {
        let meta = self.file.metadata().map_err(io_error("read the metadata of", &self.path))?;
        if meta.is_file() && Stamp::of(&meta) != self.at_open {
            return Err(Error::Io {
                op: "measure",
                path: self.path.clone(),
                source: io::Error::other("the file changed while it was being read"),
            });
        }
        Ok(())
    }
}

impl Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Mapped(map) => map,
            Bytes::Read(buf) => buf,
        }
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write as _;

    use super::MappedFile;

    #[test]
    fn maps_reads_and_detects_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kernel");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        fs::write(&path, &data).unwrap();
        let mapped = MappedFile::open(&path).unwrap();
        assert_eq!(&mapped[..], &data[..]);
        mapped.ensure_unchanged().unwrap();

        // An append changes the size (and the times): the result must be refused.
        fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"more").unwrap();
        let err = mapped.ensure_unchanged().unwrap_err().to_string();
        assert!(err.contains("kernel"), "{err}");
        assert!(
            std::error::Error::source(&mapped.ensure_unchanged().unwrap_err())
                .unwrap()
                .to_string()
                .contains("changed while it was being read")
        );
    }

    #[test]
    fn empty_files_and_pipes_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        fs::write(&empty, b"").unwrap();
        assert!(MappedFile::open(&empty).unwrap().is_empty());

        // /dev/null is a character device: it cannot be mapped, and reads as empty.
        assert!(MappedFile::open(std::path::Path::new("/dev/null")).unwrap().is_empty());
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let err = MappedFile::open(std::path::Path::new("/nonexistent/ovmf.fd")).unwrap_err();
        assert_eq!(err.to_string(), "cannot open /nonexistent/ovmf.fd");
    }
}
