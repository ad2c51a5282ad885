//! The streaming writer: [`Writer`] appends entries to any `Write` and ends with the trailer.

use std::io::{self, Read, Write};
use std::num::NonZeroU32;

use super::header::{self, HEADER_LEN};
use super::read::check_size;
use super::{
    Error, ErrorKind, FileType, Format, Header, PATH_MAX, Result, TRAILER, padding, update_checksum,
};

/// The size of the stack buffer used to copy data.
const COPY_BUFFER_LEN: usize = 16 * 1024;

/// Zero bytes for padding.
const ZEROS: [u8; 512] = [0; 512];

/// Writes a newc or crc archive to a byte stream.
///
/// Entries are written in the order they are appended; sorting them and choosing their
/// metadata is the caller's business.
/// The writer checks each entry by the rules the [`Reader`](super::Reader) applies (names, file
/// types, sizes, symlink targets and crc checksums), except that it does not track duplicate
/// paths.
/// An error in the middle of an entry leaves a partial entry in the output; after any error
/// every further call returns [`ErrorKind::PreviousError`].
#[derive(Debug)]
pub struct Writer<W> {
    inner: W,
    format: Format,
    offset: u64,
    failed: bool,
}

impl<W: Write> Writer<W> {
    /// Creates a writer that writes an archive of `format` to `inner`.
    pub fn new(inner: W, format: Format) -> Self {
        Writer { inner, format, offset: 0, failed: false }
    }

    /// Writes the header, then exactly `header.file_size` bytes copied from `data`.
    ///
    /// The data is streamed through a fixed-size buffer, except symlink targets, which are
    /// checked (at most [`PATH_MAX`] bytes) before anything is written.
    /// It is an error if `data` has fewer or more bytes than `header.file_size`.
    /// For a regular file in [`Format::Crc`], `header.check` must be the [`checksum`] of the
    /// data; it is verified while copying.
    /// For the other types `check` is written as given (GNU cpio writes 0).
    ///
    /// [`checksum`]: super::checksum
    pub fn append(&mut self, header: &Header, data: impl Read) -> Result<()> {
        if self.failed {
            return Err(Error::new(
                self.offset,
                Some(header.name.clone()),
                ErrorKind::PreviousError,
            ));
        }
        let result = self.append_entry(header, data);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// The number of bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Writes the trailer entry, flushes and returns the inner writer.
    ///
    /// The trailer has all fields 0 except `nlink` 1, as GNU cpio writes it.
    /// Every entry ends on a multiple of 4 bytes, so the archive does too.
    pub fn finish(mut self) -> Result<W> {
        self.write_trailer()?;
        self.flush()?;
        Ok(self.inner)
    }

    /// Like [`Writer::finish`], then pads the archive with zeros to a multiple of `block_size`.
    ///
    /// GNU cpio pads to 512 bytes; with that block size the output of a re-written GNU cpio
    /// archive is byte-identical.
    pub fn finish_padded(mut self, block_size: NonZeroU32) -> Result<W> {
        self.write_trailer()?;
        let block_size = u64::from(block_size.get());
        let mut left = (block_size - self.offset % block_size) % block_size;
        let trailer_offset = self.offset;
        while left > 0 {
            let len = left.min(ZEROS.len() as u64);
            self.write_bytes(trailer_offset, TRAILER, &ZEROS[..len as usize])?;
            left -= len;
        }
        self.flush()?;
        Ok(self.inner)
    }

    fn write_trailer(&mut self) -> Result<()> {
        if self.failed {
            return Err(Error::new(self.offset, None, ErrorKind::PreviousError));
        }
        let trailer = Header { name: TRAILER.to_owned(), nlink: 1, ..Header::default() };
        let offset = self.offset;
        let result = self.write_name_and_header(offset, &trailer);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn flush(&mut self) -> Result<()> {
        let offset = self.offset;
        self.inner.flush().map_err(|err| Error::new(offset, None, ErrorKind::Io(err)))
    }

    fn append_entry(&mut self, header: &Header, mut data: impl Read) -> Result<()> {
        let offset = self.offset;
        let error = |kind| Error::new(offset, Some(header.name.clone()), kind);
        header::validate_path(&header.name).map_err(error)?;
        let file_type = header
            .file_type()
            .ok_or_else(|| error(ErrorKind::UnknownFileType { mode: header.mode }))?;
        check_size(file_type, header.file_size).map_err(error)?;
        let expected = u64::from(header.file_size);

        if file_type == FileType::Symlink {
            // The size check above bounds the target by PATH_MAX, so it can be checked before
            // anything is written.
            let mut target = Vec::with_capacity(PATH_MAX);
            (&mut data)
                .take(expected)
                .read_to_end(&mut target)
                .map_err(|err| error(ErrorKind::Io(err)))?;
            if (target.len() as u64) < expected {
                return Err(error(ErrorKind::DataTooShort { expected, got: target.len() as u64 }));
            }
            ensure_exhausted(&mut data, expected).map_err(error)?;
            let target = header::decode_symlink_target(target).map_err(error)?;
            self.write_name_and_header(offset, header)?;
            self.write_bytes(offset, &header.name, target.as_bytes())?;
        } else {
            self.write_name_and_header(offset, header)?;
            let verify = self.format == Format::Crc && file_type == FileType::Regular;
            let mut checksum = 0u32;
            let mut buf = [0u8; COPY_BUFFER_LEN];
            let mut copied = 0u64;
            while copied < expected {
                let want = (expected - copied).min(buf.len() as u64) as usize;
                let n = match data.read(&mut buf[..want]) {
                    Ok(0) => {
                        return Err(error(ErrorKind::DataTooShort { expected, got: copied }));
                    }
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(error(ErrorKind::Io(err))),
                };
                // A misbehaving `Read` may claim more bytes than it was given room for.
                let chunk = buf.get(..n).ok_or_else(|| {
                    error(ErrorKind::Io(io::Error::other(
                        "the data source returned more bytes than requested",
                    )))
                })?;
                if verify {
                    checksum = update_checksum(checksum, chunk);
                }
                self.write_bytes(offset, &header.name, chunk)?;
                copied += n as u64;
            }
            ensure_exhausted(&mut data, expected).map_err(error)?;
            if verify && checksum != header.check {
                return Err(error(ErrorKind::ChecksumMismatch {
                    expected: header.check,
                    actual: checksum,
                }));
            }
        }
        self.write_bytes(offset, &header.name, &ZEROS[..padding(expected) as usize])
    }

    /// Writes the header and the name with its NUL and padding.
    fn write_name_and_header(&mut self, offset: u64, header: &Header) -> Result<()> {
        // `validate_path` bounded the name by PATH_MAX (the trailer's name is short), so the
        // size fits in the field.
        let namesize = header.name.len() + 1;
        let Ok(field) = u32::try_from(namesize) else {
            let kind = ErrorKind::NameTooLong { size: namesize as u64 };
            return Err(Error::new(offset, Some(header.name.clone()), kind));
        };
        let bytes = header::encode(self.format, header, field);
        self.write_bytes(offset, &header.name, &bytes)?;
        self.write_bytes(offset, &header.name, header.name.as_bytes())?;
        let pad = padding((HEADER_LEN + namesize) as u64) as usize;
        // The NUL and the padding are all zeros.
        self.write_bytes(offset, &header.name, &ZEROS[..1 + pad])
    }

    fn write_bytes(&mut self, offset: u64, name: &str, bytes: &[u8]) -> Result<()> {
        self.inner
            .write_all(bytes)
            .map_err(|err| Error::new(offset, Some(name.to_owned()), ErrorKind::Io(err)))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }
}

/// Checks that `data` has no byte left, by trying to read one more.
fn ensure_exhausted(data: &mut impl Read, expected: u64) -> std::result::Result<(), ErrorKind> {
    let mut byte = [0u8; 1];
    loop {
        return match data.read(&mut byte) {
            Ok(0) => Ok(()),
            Ok(_) => Err(ErrorKind::DataTooLong { expected }),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => Err(ErrorKind::Io(err)),
        };
    }
}
