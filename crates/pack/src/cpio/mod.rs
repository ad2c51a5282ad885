//! A streaming reader and writer for the SVR4 cpio formats "newc" (`070701`) and "crc" (`070702`).
//!
//! An archive is a sequence of entries followed by an entry named [`TRAILER`].
//! Each entry is a 110-byte header (a 6-byte magic and 13 fields of 8 ASCII hex digits),
//! the entry name with its terminating NUL, zero padding to a multiple of 4 bytes,
//! then `filesize` bytes of data and zero padding to a multiple of 4 bytes again.
//! The "crc" format is the same layout with a different magic and a `check` field that holds
//! the wrapping 32-bit sum of the data bytes of regular files (see [`checksum`]).
//! The layout is described in the `cpio(5)` manual page of libarchive and in
//! `Documentation/driver-api/early-userspace/buffer-format.rst` of Linux.
//!
//! The [`Reader`] treats its input as hostile:
//!
//! - It never panics and never allocates a size taken from the input beyond [`PATH_MAX`]
//!   (names and symlink targets); file data is only streamed through the caller's buffer.
//! - Names must be NUL-terminated UTF-8 relative paths without `..`, `.` or empty components.
//!   A leading `./` is stripped, the root entry `.` is kept as is, and a path may appear only
//!   once per archive.
//! - Every error carries the byte offset of the header of the entry it concerns and, once it is
//!   known, the entry's name (see [`Error`]).
//!
//! The [`Writer`] applies the same rules, so it never produces an archive the reader rejects.
//! It writes uppercase hex digits and a trailer with `nlink` 1, as GNU cpio does, so that
//! re-writing a GNU cpio `--reproducible` archive gives back the same bytes.
//!
//! ```
//! use secretvm_pack::cpio::{Format, Header, Reader, Writer};
//! use std::io::Read;
//!
//! let mut writer = Writer::new(Vec::new(), Format::Newc);
//! let header = Header {
//!     name: "etc/hostname".to_owned(),
//!     mode: 0o100644,
//!     nlink: 1,
//!     file_size: 6,
//!     ..Header::default()
//! };
//! writer.append(&header, &b"guest\n"[..])?;
//! let archive = writer.finish()?;
//!
//! let mut reader = Reader::new(&archive[..]);
//! let mut entry = reader.next_entry()?.expect("one entry");
//! assert_eq!(entry.header(), &header);
//! let mut data = String::new();
//! entry.read_to_string(&mut data)?;
//! assert_eq!(data, "guest\n");
//! assert!(reader.next_entry()?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Tests live in `tests.rs`; the fuzz target in `fuzz/` calls [`check_roundtrip`].

mod error;
mod fuzz;
mod header;
mod read;
mod write;

#[cfg(test)]
mod tests;

pub use error::{Error, ErrorKind, Result};
pub use fuzz::check_roundtrip;
pub use read::{Entry, Reader};
pub use write::Writer;

/// The name of the entry that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";

/// The largest accepted length in bytes of an entry name (without its NUL) and of a symlink target.
///
/// This is Linux's `PATH_MAX` minus the terminating NUL, so a valid name plus its NUL is at most
/// 4097 bytes in the header's `namesize` field.
pub const PATH_MAX: usize = 4096;

/// The two supported archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SVR4 without checksum, magic `070701`; the `check` field is carried but not interpreted.
    Newc,
    /// SVR4 with checksum, magic `070702`; `check` is the [`checksum`] of a regular file's data.
    Crc,
}

impl Format {
    /// The 6-byte ASCII magic that starts every header of this format.
    pub fn magic(self) -> &'static [u8; 6] {
        match self {
            Format::Newc => b"070701",
            Format::Crc => b"070702",
        }
    }
}

/// The file type stored in the `S_IFMT` bits of an entry's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// `S_IFREG`, a regular file.
    Regular,
    /// `S_IFDIR`, a directory.
    Directory,
    /// `S_IFLNK`, a symbolic link whose target is the entry's data.
    Symlink,
    /// `S_IFCHR`, a character device.
    CharDevice,
    /// `S_IFBLK`, a block device.
    BlockDevice,
    /// `S_IFIFO`, a named pipe.
    Fifo,
    /// `S_IFSOCK`, a socket.
    Socket,
}

/// The mask of the file type bits in a mode.
const S_IFMT: u32 = 0o170000;

/// The mask of all bits a 16-bit `mode_t` can hold.
const MODE_MASK: u32 = 0o177777;

impl FileType {
    /// Decodes the file type of `mode`.
    ///
    /// Returns `None` for type bits that name no file type, and for modes with bits set above
    /// the 16 bits of a `mode_t` (Linux would silently drop them).
    pub fn from_mode(mode: u32) -> Option<FileType> {
        if mode & !MODE_MASK != 0 {
            return None;
        }
        Some(match mode & S_IFMT {
            0o100000 => FileType::Regular,
            0o040000 => FileType::Directory,
            0o120000 => FileType::Symlink,
            0o020000 => FileType::CharDevice,
            0o060000 => FileType::BlockDevice,
            0o010000 => FileType::Fifo,
            0o140000 => FileType::Socket,
            _ => return None,
        })
    }

    /// The `S_IFxxx` bits of this file type, to be combined with the permission bits.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => 0o100000,
            FileType::Directory => 0o040000,
            FileType::Symlink => 0o120000,
            FileType::CharDevice => 0o020000,
            FileType::BlockDevice => 0o060000,
            FileType::Fifo => 0o010000,
            FileType::Socket => 0o140000,
        }
    }
}

/// The decoded header of one entry.
///
/// The fields are the newc header fields in archive order, except `namesize`, which is derived
/// from `name`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// The entry's path: `.` for the root, otherwise relative, without a leading `./`.
    pub name: String,
    /// The inode number; entries of a hard-link set share it.
    pub ino: u32,
    /// The file type bits and the permission bits.
    pub mode: u32,
    /// The owner's user id.
    pub uid: u32,
    /// The owner's group id.
    pub gid: u32,
    /// The number of links.
    pub nlink: u32,
    /// The modification time in seconds since the Unix epoch.
    pub mtime: u32,
    /// The length of the entry's data in bytes.
    pub file_size: u32,
    /// The major number of the device that held the file.
    pub dev_major: u32,
    /// The minor number of the device that held the file.
    pub dev_minor: u32,
    /// The major number of a device node.
    pub rdev_major: u32,
    /// The minor number of a device node.
    pub rdev_minor: u32,
    /// The `check` field: the data checksum of a regular file in [`Format::Crc`], else usually 0.
    pub check: u32,
}

impl Header {
    /// The file type encoded in [`Header::mode`], or `None` if it names none.
    pub fn file_type(&self) -> Option<FileType> {
        FileType::from_mode(self.mode)
    }

    /// The permission bits of [`Header::mode`], including setuid, setgid and sticky.
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// The checksum of the crc format: the wrapping 32-bit sum of all data bytes.
pub fn checksum(data: &[u8]) -> u32 {
    update_checksum(0, data)
}

/// Adds `data` to a running [`checksum`].
fn update_checksum(sum: u32, data: &[u8]) -> u32 {
    data.iter().fold(sum, |sum, &byte| sum.wrapping_add(u32::from(byte)))
}

/// The number of zero bytes that pad `len` to a multiple of 4.
fn padding(len: u64) -> u64 {
    (4 - len % 4) % 4
}
