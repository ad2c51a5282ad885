//! Writing artifacts while hashing them: every function here writes atomically and returns the
//! size and SHA-256 of exactly the bytes it wrote, so nothing reads an artifact back to learn
//! what was written (the manifest takes these values).

use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{Error, Result, io_error, open_file, write_atomically};

/// What was written to an artifact: its size and its SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The size in bytes.
    pub len: u64,
    /// The SHA-256 of the bytes written.
    pub sha256: [u8; 32],
}

/// A writer that hashes and counts what goes through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> HashingWriter<W> {
        HashingWriter { inner, hasher: Sha256::new(), len: 0 }
    }

    /// The size and digest of everything written so far.
    pub(crate) fn finish(self) -> Written {
        Written { len: self.len, sha256: self.hasher.finalize().into() }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let done = buf.get(..n).unwrap_or(buf);
        self.hasher.update(done);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Copies the regular file `src` to `dst` atomically, hashing the bytes as they are written.
///
/// The size comes from the bytes copied, not from a separate `stat`; a source that changes
/// size while it is copied is an error.
pub fn copy_file(src: &Path, dst: &Path) -> Result<Written> {
    let (expected, file) = open_file(src).map_err(io_error("open", src))?;
    let written = write_atomically(dst, |sink| {
        let mut out = HashingWriter::new(&mut *sink);
        io::copy(&mut (&file).take(expected.saturating_add(1)), &mut out)
            .map_err(io_error("copy", src))?;
        Ok(out.finish())
    })?;
    if written.len != expected {
        return Err(Error::Io {
            op: "copy",
            path: src.to_path_buf(),
            source: io::Error::other(format!(
                "the file changed while it was copied: {} bytes at open, {} copied",
                expected, written.len
            )),
        });
    }
    Ok(written)
}

/// Writes `bytes` to `dst` atomically and returns their size and SHA-256.
pub fn write_bytes(dst: &Path, bytes: &[u8]) -> Result<Written> {
    write_atomically(dst, |sink| {
        let mut out = HashingWriter::new(&mut *sink);
        out.write_all(bytes).map_err(io_error("write", dst))?;
        Ok(out.finish())
    })
}

/// Removes the file `path` if it exists: an artifact that no longer describes what is beside
/// it. A missing file is not an error.
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Reads the whole regular file `path`, refusing files larger than `max_len` bytes.
pub fn read_file(path: &Path, max_len: u64) -> Result<Vec<u8>> {
    let (len, file) = open_file(path).map_err(io_error("open", path))?;
    if len > max_len {
        return Err(Error::Io {
            op: "read",
            path: path.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{len} bytes, expected at most {max_len}"),
            ),
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    (&file).take(max_len).read_to_end(&mut bytes).map_err(io_error("read", path))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    /// SHA-256 of "abc" (FIPS 180-2, appendix B.1).
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn copy_returns_the_digest_of_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        fs::write(&src, b"abc").unwrap();
        let written = copy_file(&src, &dst).unwrap();
        assert_eq!(written.len, 3);
        assert_eq!(hex(&written.sha256), ABC);
        assert_eq!(fs::read(&dst).unwrap(), b"abc");
    }

    #[test]
    fn write_bytes_returns_the_digest_of_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("dst");
        let written = write_bytes(&dst, b"abc").unwrap();
        assert_eq!((written.len, hex(&written.sha256)), (3, ABC.to_owned()));
        assert_eq!(fs::read(&dst).unwrap(), b"abc");
    }

    #[test]
    fn read_file_refuses_files_above_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("big");
        fs::write(&src, b"0123456789").unwrap();
        assert_eq!(read_file(&src, 10).unwrap(), b"0123456789");
        let err = read_file(&src, 9).unwrap_err();
        let message = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            message.contains("big") && message.contains("10 bytes, expected at most 9"),
            "{message}"
        );
    }

    #[test]
    fn copy_refuses_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = copy_file(dir.path(), &dir.path().join("dst")).unwrap_err();
        assert!(
            std::error::Error::source(&err).unwrap().to_string().contains("not a regular file")
        );
        assert!(!dir.path().join("dst").exists());
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
