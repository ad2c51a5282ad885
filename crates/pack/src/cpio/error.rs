//! The error type of the cpio reader and writer: where it happened, and what.

use std::{fmt, io};

use super::{FileType, Format};

/// The result type of the cpio reader and writer.
pub type Result<T> = std::result::Result<T, Error>;

/// A cpio error: the byte offset of the entry's header, the entry's name once known, and the kind.
///
/// The offset is always the offset of the header of the entry concerned, also when the defect
/// lies in its name or data; [`ErrorKind`] carries the details (such as how many bytes of the data
/// were present).
/// For a missing entry (end of input before the trailer) it is the offset where the header
/// should have started.
#[derive(Debug)]
pub struct Error {
    offset: u64,
    entry: Option<String>,
    kind: ErrorKind,
}

impl Error {
    pub(super) fn new(offset: u64, entry: Option<String>, kind: ErrorKind) -> Error {
        Error { offset, entry, kind }
    }

    /// The byte offset of the header of the entry the error concerns.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The name of the entry, if the error happened after the name was read and found valid
    /// UTF-8.
    pub fn entry(&self) -> Option<&str> {
        self.entry.as_deref()
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Consumes the error and returns what went wrong.
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }

    /// Takes back a cpio [`Error`] that travelled inside an [`io::Error`].
    ///
    /// [`Entry`](super::Entry)'s `Read` implementation must return `io::Error`, and wraps the
    /// cpio error (truncated data, checksum mismatch) in it; callers that used `io::copy` can get
    /// it back with this function.
    /// Returns the `io::Error` unchanged if it does not carry a cpio error.
    pub fn from_io_error(err: io::Error) -> std::result::Result<Error, io::Error> {
        if !err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            return Err(err);
        }
        let kind = err.kind();
        match err.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(ours)) => Ok(*ours),
            Some(Err(other)) => Err(io::Error::new(kind, other)),
            None => Err(io::Error::from(kind)),
        }
    }

    /// Wraps this error in an [`io::Error`] of a fitting kind.
    pub(super) fn into_io_error(self) -> io::Error {
        let kind = match &self.kind {
            ErrorKind::Io(source) => source.kind(),
            ErrorKind::Truncated { .. } | ErrorKind::MissingTrailer => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entry {
            // Debug formatting quotes the name and escapes control characters from hostile input.
            Some(entry) => write!(f, "cpio entry {entry:?} at byte {}: {}", self.offset, self.kind),
            None => write!(f, "cpio header at byte {}: {}", self.offset, self.kind),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The kind's text is already part of this error's message, so the chain continues with
        // the kind's own cause.
        std::error::Error::source(&self.kind)
    }
}

/// What went wrong while reading or writing an archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The header does not start with a known cpio magic.
    #[error("bad magic \"{}\", expected \"070701\" (newc) or \"070702\" (crc)", found.escape_ascii())]
    BadMagic {
        /// The first 6 bytes of the header.
        found: [u8; 6],
    },
    /// The header is in a cpio format this module does not read.
    #[error("unsupported cpio format: {format}, only newc (070701) and crc (070702) are supported")]
    UnsupportedFormat {
        /// The format that was recognized, with its magic.
        format: &'static str,
    },
    /// The header's format differs from the format of the archive's first header.
    #[error("{found:?} header in an archive that started as {first:?}")]
    MixedFormats {
        /// The format of the first header.
        first: Format,
        /// The format of this header.
        found: Format,
    },
    /// A header field is not 8 ASCII hex digits.
    #[error("field {field} is not 8 hex digits: \"{found}\"")]
    BadHexField {
        /// The name of the field, as in the newc documentation (`namesize`, `filesize`, ...).
        field: &'static str,
        /// The field's bytes, with non-printable bytes escaped.
        found: String,
    },
    /// The `namesize` field is 0, so there is not even room for the NUL.
    #[error("namesize is 0")]
    NameSizeZero,
    /// The name is longer than [`PATH_MAX`](super::PATH_MAX) bytes.
    #[error("name of {size} bytes (with its NUL) is longer than PATH_MAX")]
    NameTooLong {
        /// The name's size including its NUL.
        size: u64,
    },
    /// The last byte of the name is not NUL.
    #[error("name is not NUL-terminated")]
    NameNotNulTerminated,
    /// The name contains a NUL byte before its end.
    #[error("name has a NUL byte at position {position}")]
    NameHasNul {
        /// The position of the first NUL in the name.
        position: usize,
    },
    /// The name is not valid UTF-8.
    #[error("name is not valid UTF-8")]
    NameNotUtf8 {
        /// Where the name stops being UTF-8.
        #[source]
        source: std::str::Utf8Error,
    },
    /// The name is empty (after stripping a leading `./`).
    #[error("name is empty")]
    EmptyName,
    /// The name is an absolute path.
    #[error("name is an absolute path")]
    AbsolutePath,
    /// The name has a `..` component.
    #[error("name has a \"..\" component")]
    DotDotComponent,
    /// The name has a `.` component (other than being the root `.` itself).
    #[error("name has a \".\" component")]
    DotComponent,
    /// The name has an empty component (`a//b` or a trailing `/`).
    #[error("name has an empty component")]
    EmptyComponent,
    /// The name equals [`TRAILER`](super::TRAILER) after normalization, but is not the trailer.
    #[error("name is reserved for the trailer")]
    ReservedName,
    /// The path was already used by an earlier entry.
    #[error("duplicate path, first seen in the entry at byte {first_offset}")]
    DuplicatePath {
        /// The header offset of the first entry with this path.
        first_offset: u64,
    },
    /// The mode's type bits name no file type, or bits above the 16 of a `mode_t` are set.
    #[error("unknown file type in mode {mode:#o}")]
    UnknownFileType {
        /// The mode field.
        mode: u32,
    },
    /// An entry that cannot have data (a directory, device, fifo or socket) has a file size.
    #[error("{file_type:?} entry has {size} bytes of data")]
    UnexpectedData {
        /// The entry's file type.
        file_type: FileType,
        /// The entry's file size.
        size: u32,
    },
    /// The trailer entry has a file size.
    #[error("trailer has {size} bytes of data")]
    TrailerHasData {
        /// The trailer's file size.
        size: u32,
    },
    /// The input ended inside an entry.
    #[error("truncated {what}: expected {expected} bytes, got {got}")]
    Truncated {
        /// Which part of the entry was cut: `header`, `name`, `name padding`, `data` or
        /// `data padding`.
        what: &'static str,
        /// The length of that part.
        expected: u64,
        /// How many of its bytes were present.
        got: u64,
    },
    /// The input ended where the next header (or the trailer) should start.
    #[error("archive ends without a TRAILER!!! entry")]
    MissingTrailer,
    /// The data of a regular file in the crc format does not match its `check` field.
    #[error("checksum mismatch: header says {expected:#010x}, data sums to {actual:#010x}")]
    ChecksumMismatch {
        /// The `check` field.
        expected: u32,
        /// The checksum of the data.
        actual: u32,
    },
    /// A symlink's file size (the length of its target) is 0 or more than
    /// [`PATH_MAX`](super::PATH_MAX).
    #[error("symlink target of {size} bytes, expected 1 to PATH_MAX")]
    SymlinkTargetSize {
        /// The symlink's file size.
        size: u32,
    },
    /// A symlink target contains a NUL byte.
    #[error("symlink target has a NUL byte at position {position}")]
    SymlinkTargetHasNul {
        /// The position of the first NUL in the target.
        position: usize,
    },
    /// A symlink target is not valid UTF-8.
    #[error("symlink target is not valid UTF-8")]
    SymlinkTargetNotUtf8 {
        /// Where the target stops being UTF-8.
        #[source]
        source: std::str::Utf8Error,
    },
    /// A symlink target was asked for an entry that is not a symlink.
    #[error("entry is not a symlink")]
    NotASymlink,
    /// A symlink target was asked for after some of the entry's data had been read.
    #[error("part of the entry's data was already read")]
    DataAlreadyRead,
    /// The writer's data source ended before the header's file size.
    #[error("data source gave {got} bytes, header says {expected}")]
    DataTooShort {
        /// The header's file size.
        expected: u64,
        /// How many bytes the source gave.
        got: u64,
    },
    /// The writer's data source had more bytes than the header's file size.
    #[error("data source has more than the {expected} bytes the header says")]
    DataTooLong {
        /// The header's file size.
        expected: u64,
    },
    /// An earlier error left the reader or writer at an unknown position in the archive.
    #[error("an earlier error left the archive position unknown")]
    PreviousError,
    /// The underlying reader or writer failed.
    #[error("I/O error")]
    Io(#[source] io::Error),
}
