//! The streaming reader: [`Reader`] yields one [`Entry`] at a time, and the entry streams its data.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};

use super::header::{self, FIELDS_LEN, HEADER_LEN, MAGIC_LEN, Name};
use super::{
    Error, ErrorKind, FileType, Format, Header, PATH_MAX, Result, padding, update_checksum,
};

/// The size of the stack buffer used to skip unread data.
const SKIP_BUFFER_LEN: usize = 8192;

/// Reads the entries of a newc or crc archive from a byte stream.
///
/// The reader pulls bytes from `inner` only as the caller asks for entries and data, and keeps
/// only the current header and the set of paths seen so far.
/// Data left unread when the caller moves to the next entry is skipped (and, for regular files
/// in the crc format, checksummed).
/// After the first error the position in the archive is unknown, and every further call returns
/// [`ErrorKind::PreviousError`].
#[derive(Debug)]
pub struct Reader<R> {
    input: Input<R>,
    current: Current,
    status: Status,
    format: Option<Format>,
    /// Every path seen so far, with the offset of its entry's header.
    seen: HashMap<String, u64>,
}

/// The underlying stream and the number of bytes taken from it.
#[derive(Debug)]
struct Input<R> {
    inner: R,
    /// Counts bytes actually read or skipped, so unlike lengths taken from the input it cannot
    /// overflow.
    offset: u64,
    /// For a seekable source ([`Reader::new_seekable`]): how to move forward without reading,
    /// and how many bytes the source held from where the archive starts.
    seek: Option<SeekSkip<R>>,
}

/// Forward skipping by seeking, for sources whose length is known.
#[derive(Debug)]
struct SeekSkip<R> {
    /// Moves the source forward by the given number of bytes (`Seek::seek_relative`, which
    /// keeps a `BufReader`'s buffer when the target is inside it).
    forward: fn(&mut R, i64) -> io::Result<()>,
    /// The length of the source from the archive's first byte.
    len: u64,
}

/// Where the reader is in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Between entries or inside one: `next_entry` may be called.
    Ready,
    /// The trailer was read.
    Done,
    /// An error left the position unknown.
    Failed,
}

/// The entry being read, and how much of it is left.
#[derive(Debug, Default)]
struct Current {
    header: Header,
    offset: u64,
    format: Option<Format>,
    /// Data bytes not yet consumed.
    remaining: u64,
    /// Padding bytes after the data.
    padding: u64,
    /// The running checksum, while it still has to be compared with `header.check`.
    checksum: Option<u32>,
}

impl Current {
    fn error(&self, kind: ErrorKind) -> Error {
        Error::new(self.offset, Some(self.header.name.clone()), kind)
    }

    /// Compares the checksum with the header once all data has been consumed.
    fn verify_checksum(&mut self) -> Result<()> {
        match self.checksum.take() {
            Some(actual) if actual != self.header.check => {
                Err(self.error(ErrorKind::ChecksumMismatch { expected: self.header.check, actual }))
            }
            _ => Ok(()),
        }
    }

    fn truncated_data(&self) -> ErrorKind {
        let expected = u64::from(self.header.file_size);
        ErrorKind::Truncated { what: "data", expected, got: expected - self.remaining }
    }
}

impl<R: Read> Input<R> {
    /// Reads until `buf` is full or the stream ends, and returns how many bytes were read.
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
            match self.inner.read(rest) {
                Ok(0) => break,
                Ok(n) if n > rest.len() => {
                    return Err(io::Error::other(
                        "the underlying reader returned more bytes than requested",
                    ));
                }
                Ok(n) => {
                    filled += n;
                    self.offset += n as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(filled)
    }

    /// Reads and drops up to `len` bytes, adding them to `checksum` if given, and returns how
    /// many bytes were there.
    ///
    /// A seekable source is moved forward instead of read when no checksum is needed; a skip
    /// past the end of the source stops at the end, exactly as reading would.
    fn skip(&mut self, len: u64, checksum: &mut Option<u32>) -> io::Result<u64> {
        if checksum.is_none()
            && let Some(seek) = &self.seek
        {
            let left = seek.len.saturating_sub(self.offset);
            let skip = len.min(left);
            let step = i64::try_from(skip).map_err(|_| io::Error::other("skip too large"))?;
            (seek.forward)(&mut self.inner, step)?;
            self.offset += skip;
            return Ok(skip);
        }
        let mut buf = [0u8; SKIP_BUFFER_LEN];
        let mut skipped = 0u64;
        while skipped < len {
            let want = usize::try_from(len - skipped).map_or(buf.len(), |left| left.min(buf.len()));
            let n = self.read_full(&mut buf[..want])?;
            if let Some(sum) = checksum {
                *sum = update_checksum(*sum, &buf[..n]);
            }
            skipped += n as u64;
            if n < want {
                break;
            }
        }
        Ok(skipped)
    }
}

impl<R: Read + Seek> Reader<R> {
    /// Creates a reader over a seekable source, starting at its current position.
    ///
    /// Data the caller does not read is skipped by seeking instead of reading, so walking the
    /// headers of an archive reads little more than the headers (crc file data is still read,
    /// to verify its checksum). A source that is shorter than its headers claim is reported as
    /// truncated exactly as with [`Reader::new`]; the source must not change length while it is
    /// read.
    pub fn new_seekable(mut inner: R) -> io::Result<Self> {
        let start = inner.stream_position()?;
        let end = inner.seek(SeekFrom::End(0))?;
        inner.seek(SeekFrom::Start(start))?;
        let seek = SeekSkip { forward: R::seek_relative, len: end.saturating_sub(start) };
        Ok(Reader::with_input(Input { inner, offset: 0, seek: Some(seek) }))
    }
}

impl<R: Read> Reader<R> {
    /// Creates a reader that takes the archive from `inner`, starting at its current position.
    pub fn new(inner: R) -> Self {
        Reader::with_input(Input { inner, offset: 0, seek: None })
    }

    fn with_input(input: Input<R>) -> Self {
        Reader {
            input,
            current: Current::default(),
            status: Status::Ready,
            format: None,
            seen: HashMap::new(),
        }
    }

    /// Returns the next entry, or `None` after the trailer.
    ///
    /// Skips (and, for crc, checksums) any unread data of the previous entry first.
    /// The bytes after the trailer are not read.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_, R>>> {
        match self.status {
            Status::Failed => {
                return Err(Error::new(self.input.offset, None, ErrorKind::PreviousError));
            }
            Status::Done => return Ok(None),
            Status::Ready => {}
        }
        match self.advance() {
            Ok(true) => Ok(Some(Entry {
                input: &mut self.input,
                current: &mut self.current,
                status: &mut self.status,
            })),
            Ok(false) => {
                self.status = Status::Done;
                Ok(None)
            }
            Err(err) => {
                self.status = Status::Failed;
                Err(err)
            }
        }
    }

    /// The number of bytes consumed from the input so far.
    pub fn offset(&self) -> u64 {
        self.input.offset
    }

    /// The archive's format, once the first header has been read.
    pub fn format(&self) -> Option<Format> {
        self.format
    }

    /// Returns the underlying stream, positioned after the bytes consumed so far.
    pub fn into_inner(self) -> R {
        self.input.inner
    }

    /// Finishes the current entry and reads the next header; returns `false` at the trailer.
    fn advance(&mut self) -> Result<bool> {
        self.finish_current()?;
        self.read_header()
    }

    /// Skips the rest of the current entry's data, checks its checksum and skips its padding.
    fn finish_current(&mut self) -> Result<()> {
        let current = &mut self.current;
        let remaining = current.remaining;
        let skipped = self
            .input
            .skip(remaining, &mut current.checksum)
            .map_err(|err| current.error(ErrorKind::Io(err)))?;
        current.remaining -= skipped;
        if current.remaining > 0 {
            return Err(current.error(current.truncated_data()));
        }
        current.verify_checksum()?;
        let padding = current.padding;
        let skipped =
            self.input.skip(padding, &mut None).map_err(|err| current.error(ErrorKind::Io(err)))?;
        if skipped < padding {
            return Err(current.error(ErrorKind::Truncated {
                what: "data padding",
                expected: padding,
                got: skipped,
            }));
        }
        current.padding = 0;
        Ok(())
    }

    /// Reads and checks the next header and name; returns `false` at the trailer.
    fn read_header(&mut self) -> Result<bool> {
        let offset = self.input.offset;
        let error = |kind| Error::new(offset, None, kind);
        let read_part = |input: &mut Input<R>, what, buf: &mut [u8]| -> Result<()> {
            let got = input.read_full(buf).map_err(|err| error(ErrorKind::Io(err)))?;
            if got < buf.len() {
                return Err(error(ErrorKind::Truncated {
                    what,
                    expected: buf.len() as u64,
                    got: got as u64,
                }));
            }
            Ok(())
        };

        let mut magic = [0u8; MAGIC_LEN];
        let got = self.input.read_full(&mut magic).map_err(|err| error(ErrorKind::Io(err)))?;
        match got {
            0 => return Err(error(ErrorKind::MissingTrailer)),
            MAGIC_LEN => {}
            _ => {
                return Err(error(ErrorKind::Truncated {
                    what: "header",
                    expected: HEADER_LEN as u64,
                    got: got as u64,
                }));
            }
        }
        let format = header::decode_magic(&magic).map_err(error)?;
        match self.format {
            None => self.format = Some(format),
            Some(first) if first != format => {
                return Err(error(ErrorKind::MixedFormats { first, found: format }));
            }
            Some(_) => {}
        }

        let mut fields = [0u8; FIELDS_LEN];
        let got = self.input.read_full(&mut fields).map_err(|err| error(ErrorKind::Io(err)))?;
        if got < FIELDS_LEN {
            return Err(error(ErrorKind::Truncated {
                what: "header",
                expected: HEADER_LEN as u64,
                got: (MAGIC_LEN + got) as u64,
            }));
        }
        let (mut header, namesize) = header::decode_fields(&fields).map_err(error)?;

        if namesize == 0 {
            return Err(error(ErrorKind::NameSizeZero));
        }
        // Checked before allocating: the name is the only buffer whose size comes from the input.
        let namesize = match usize::try_from(namesize) {
            Ok(size) if size <= PATH_MAX + 1 => size,
            _ => return Err(error(ErrorKind::NameTooLong { size: u64::from(namesize) })),
        };
        let mut raw_name = vec![0u8; namesize];
        read_part(&mut self.input, "name", &mut raw_name)?;
        let name_padding = padding((HEADER_LEN + namesize) as u64);
        let mut pad = [0u8; 3];
        read_part(&mut self.input, "name padding", &mut pad[..name_padding as usize])?;

        let name = match header::decode_name(raw_name) {
            Ok(Name::Trailer) => {
                if header.file_size != 0 {
                    return Err(error(ErrorKind::TrailerHasData { size: header.file_size }));
                }
                return Ok(false);
            }
            Ok(Name::Path(name)) => name,
            Err((kind, name)) => return Err(Error::new(offset, name, kind)),
        };
        let named_error = |kind| Error::new(offset, Some(name.clone()), kind);

        let file_type = header
            .file_type()
            .ok_or_else(|| named_error(ErrorKind::UnknownFileType { mode: header.mode }))?;
        check_size(file_type, header.file_size).map_err(named_error)?;
        if let Some(&first_offset) = self.seen.get(&name) {
            return Err(named_error(ErrorKind::DuplicatePath { first_offset }));
        }
        self.seen.insert(name.clone(), offset);

        header.name = name;
        let file_size = u64::from(header.file_size);
        let verify = format == Format::Crc && file_type == FileType::Regular;
        self.current = Current {
            header,
            offset,
            format: Some(format),
            remaining: file_size,
            padding: padding(file_size),
            checksum: verify.then_some(0),
        };
        Ok(true)
    }
}

/// Checks that the file size suits the file type: symlinks have a target of 1 to [`PATH_MAX`]
/// bytes, regular files any size, and the other types no data.
pub(super) fn check_size(file_type: FileType, size: u32) -> std::result::Result<(), ErrorKind> {
    match file_type {
        FileType::Regular => Ok(()),
        FileType::Symlink => match usize::try_from(size) {
            Ok(len) if (1..=PATH_MAX).contains(&len) => Ok(()),
            _ => Err(ErrorKind::SymlinkTargetSize { size }),
        },
        _ if size == 0 => Ok(()),
        _ => Err(ErrorKind::UnexpectedData { file_type, size }),
    }
}

/// One entry of an archive: its header, and a stream of its data.
///
/// The entry borrows the [`Reader`]; its `Read` implementation yields exactly
/// [`Header::file_size`] bytes and then 0.
/// Truncated data and a checksum mismatch are reported as an `io::Error` that carries the cpio
/// [`Error`] (see [`Error::from_io_error`]); the mismatch is reported when the last byte is
/// consumed.
#[derive(Debug)]
pub struct Entry<'a, R> {
    input: &'a mut Input<R>,
    current: &'a mut Current,
    status: &'a mut Status,
}

impl<R: Read> Entry<'_, R> {
    /// The entry's header.
    pub fn header(&self) -> &Header {
        &self.current.header
    }

    /// The byte offset of this entry's header in the archive.
    pub fn offset(&self) -> u64 {
        self.current.offset
    }

    /// The format of this entry's header.
    pub fn format(&self) -> Format {
        self.current.format.unwrap_or(Format::Newc)
    }

    /// Reads the whole data of a symlink as its target.
    ///
    /// The target is at most [`PATH_MAX`] bytes (checked when the header was read), not empty,
    /// has no NUL and is UTF-8.
    /// Must be called before any of the data is read.
    pub fn read_symlink_target(&mut self) -> Result<String> {
        if self.header().file_type() != Some(FileType::Symlink) {
            return Err(self.current.error(ErrorKind::NotASymlink));
        }
        if self.current.remaining != u64::from(self.header().file_size) {
            return Err(self.current.error(ErrorKind::DataAlreadyRead));
        }
        // The header check bounds the size by PATH_MAX, so this allocation is small.
        let mut target = Vec::with_capacity(self.current.remaining.min(PATH_MAX as u64) as usize);
        if let Err(err) = self.read_to_end(&mut target) {
            let err = match Error::from_io_error(err) {
                Ok(ours) => ours,
                Err(other) => self.current.error(ErrorKind::Io(other)),
            };
            *self.status = Status::Failed;
            return Err(err);
        }
        header::decode_symlink_target(target).map_err(|kind| self.current.error(kind))
    }

    /// Marks the reader failed and wraps `err` for the `Read` interface.
    fn fail(&mut self, err: Error) -> io::Error {
        *self.status = Status::Failed;
        err.into_io_error()
    }
}

impl<R: Read> Read for Entry<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if *self.status == Status::Failed {
            return Err(self.current.error(ErrorKind::PreviousError).into_io_error());
        }
        if self.current.remaining == 0 {
            return match self.current.verify_checksum() {
                Ok(()) => Ok(0),
                Err(err) => Err(self.fail(err)),
            };
        }
        let want = usize::try_from(self.current.remaining)
            .map_or(buf.len(), |remaining| remaining.min(buf.len()));
        if want == 0 {
            return Ok(0);
        }
        let chunk = &mut buf[..want];
        let n = match self.input.inner.read(chunk) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return Err(err),
            Err(err) => {
                let err = self.current.error(ErrorKind::Io(err));
                return Err(self.fail(err));
            }
        };
        if n == 0 {
            let err = self.current.error(self.current.truncated_data());
            return Err(self.fail(err));
        }
        // A misbehaving `Read` may claim more bytes than it was given room for.
        let Some(data) = chunk.get(..n) else {
            let err = self.current.error(ErrorKind::Io(io::Error::other(
                "the underlying reader returned more bytes than requested",
            )));
            return Err(self.fail(err));
        };
        self.input.offset += n as u64;
        self.current.remaining -= n as u64;
        if let Some(sum) = &mut self.current.checksum {
            *sum = update_checksum(*sum, data);
        }
        if self.current.remaining == 0
            && let Err(err) = self.current.verify_checksum()
        {
            return Err(self.fail(err));
        }
        Ok(n)
    }
}
