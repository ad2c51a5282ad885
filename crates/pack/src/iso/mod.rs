//! An ISO 9660 (ECMA-119, interchange level 3) image with Rock Ridge (SUSP 1.12, RRIP 1.10 as
//! xorriso emits it), written straight from a newc cpio archive without extracting it.
//!
//! The work is split in two passes so that file data is never held in memory:
//!
//! 1. [`plan`] reads the cpio headers once (symlink targets are the only data it reads) and
//!    returns a [`Layout`]: every entry's names, metadata and, for regular files, the byte range
//!    of its data inside the cpio.
//!    Peak memory grows with the number of entries, not with the data size.
//! 2. [`write()`] emits the image sequentially into any `Write`, copying each file's data from a
//!    `Read + Seek` view of the same cpio (with a `File` on both sides, `std::io::copy` uses
//!    `copy_file_range` on Linux).
//!
//! # What the image holds
//!
//! The layout follows xorriso 1.5.4 (`xorriso -as mkisofs -iso-level 3 -full-iso9660-filenames`):
//! sectors 0–15 zero, the primary volume descriptor at 16 and the set terminator at 17; the
//! directories in depth-first pre-order, each followed by its continuation area; the L and M path
//! tables; one zero block that every empty file, symlink, device, fifo and socket points at; then
//! file data in tree order, a hard-link set sharing the extent of its first name.
//!
//! - ISO 9660 names are made as libisofs makes them (see [`names`](self)): uppercase d-characters,
//!   at most 30 characters plus the dot for files and 31 for directories, and collisions resolved
//!   by replacing the tail with a counter, in the byte order of the Rock Ridge names.
//!   Only readers without Rock Ridge see them.
//! - Rock Ridge: SP and a CE to the ER (`RRIP_1991A`) in the root's `.` record; PX (the 36-byte
//!   RRIP 1.10 form, **without** the 1.12 inode serial number: Linux derives inode numbers from the
//!   directory record position and ignores it, and the 1.10 form is what the ER announces); TF
//!   (modify, access and attribute times, all the cpio mtime); NM, SL and PN; CE continuation areas
//!   for names and symlink targets that do not fit in the directory record.
//!   NM and SL pieces in a continuation area never cross a block boundary, because Linux rejects
//!   such a CE.
//! - Directories deeper than 8 levels stay where they are (no `rr_moved`, as xorriso's `-D`):
//!   Linux reads them.
//! - A directory's PX link count is 2 plus its subdirectories (or 1, as xorriso writes, with
//!   [`Options::directory_nlink_one`]); a hard-link set's count is its number of names.
//! - Device numbers: PN holds `0, major << 8 | minor` when the numbers fit in 12 and 8 bits (what
//!   xorriso writes and every reader decodes alike), else `major, minor`, which Linux decodes
//!   exactly (`MKDEV(high, low)`); a device with major 0 and a minor above 255, or numbers beyond
//!   Linux's 12/20 bits, is rejected because Linux would read another number.
//!
//! # Determinism
//!
//! The image depends only on the set of entries and the [`Options`]: entries are sorted by path
//! before anything is laid out, times come from the cpio clamped to [`Options::epoch`], and
//! nothing comes from the clock, the locale or the environment.
//!
//! Tests live in `tests.rs`; the fuzz target in `fuzz/` calls [`check_iso`]; the command-line tests compare our images with `isoinfo`,
//! `xorriso` and `bsdtar` listings and with what Linux shows when it mounts them.

mod fuzz;
mod layout;
mod names;
mod rr;
mod time;
mod write;

#[cfg(test)]
mod tests;

use std::io;

pub use fuzz::{CheckedIso, check_iso};
pub use layout::{Layout, plan};
pub use write::{write, write_with_progress};

use crate::cpio;

/// The size of a logical block (sector) of the image.
pub const BLOCK_SIZE: u64 = 2048;

/// The largest Rock Ridge name component Linux reads back whole: it stops collecting NM pieces
/// once the name would reach 254 bytes.
pub const LINUX_NAME_MAX: usize = 253;

/// How to build the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `SOURCE_DATE_EPOCH`: the volume dates, and the latest time any file may show.
    pub epoch: u64,
    /// Set every file time to [`Options::epoch`] instead of the clamped cpio mtime (as the
    /// upstream script does with `-volume_date all_file_dates`).
    pub all_times_epoch: bool,
    /// Force every owner to 0:0 (as the upstream script does with `-uid 0 -gid 0`).
    pub owner_root: bool,
    /// The volume identifier: 1 to 32 d-characters (`A`–`Z`, `0`–`9`, `_`).
    pub volume_id: String,
    /// The data preparer identifier: up to 128 a-characters; empty leaves the field blank.
    pub preparer_id: String,
    /// Give directories a PX link count of 1, as xorriso does, instead of 2 plus the number of
    /// subdirectories.
    pub directory_nlink_one: bool,
    /// Zero blocks appended after the last file and counted in the volume size:
    /// `xorriso -as mkisofs` appends 150 (300 KiB) even after `-padding 0`, because the
    /// mkisofs emulation resets the padding to its default.
    pub pad_blocks: u32,
    /// Accept name components of 254 and 255 bytes, which Linux truncates when it reads them
    /// (see [`LINUX_NAME_MAX`]); by default they are an error.
    pub allow_long_names: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            epoch: 0,
            all_times_epoch: false,
            owner_root: false,
            volume_id: "ISOIMAGE".to_owned(),
            preparer_id: String::new(),
            directory_nlink_one: false,
            pad_blocks: 0,
            allow_long_names: false,
        }
    }
}

/// Why an image could not be planned or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cpio archive is malformed.
    #[error(transparent)]
    Cpio(#[from] cpio::Error),
    /// An entry's parent directory is not in the archive.
    #[error("cpio entry {path:?}: its parent directory {parent:?} is not in the archive")]
    MissingParent {
        /// The entry's path.
        path: String,
        /// The missing parent.
        parent: String,
    },
    /// An entry's parent is in the archive but is not a directory.
    #[error("cpio entry {path:?}: its parent {parent:?} is not a directory")]
    ParentNotDirectory {
        /// The entry's path.
        path: String,
        /// The parent's path.
        parent: String,
    },
    /// The root entry `.` is not a directory.
    #[error("cpio entry \".\" (the root) is not a directory")]
    RootNotDirectory,
    /// A name component is longer than Linux reads back whole (253 bytes, see
    /// [`LINUX_NAME_MAX`]) or, with [`Options::allow_long_names`], than `NAME_MAX` (255).
    #[error("cpio entry {path:?}: its name is {name_len} bytes, more than {max}")]
    NameTooLong {
        /// The entry's path.
        path: String,
        /// The length of its last component.
        name_len: usize,
        /// The limit that applies.
        max: usize,
    },
    /// A device node's numbers cannot be encoded so that Linux reads them back.
    #[error(
        "cpio entry {path:?}: device {major}:{minor} cannot be represented (Linux would read another number)"
    )]
    DeviceNumber {
        /// The entry's path.
        path: String,
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// More than one member of a hard-link set carries data, with different sizes.
    #[error(
        "hard link {path:?}: its set already has {other_size} bytes of data from {other:?}, this member has {size}"
    )]
    HardLinkData {
        /// The member being read.
        path: String,
        /// Its data size.
        size: u64,
        /// The member that carried data first (in path order).
        other: String,
        /// That member's size.
        other_size: u64,
    },
    /// A directory holds so many entries that no unique ISO 9660 name is left.
    #[error("directory {path:?}: cannot make ISO 9660 name {name:?} unique")]
    NameCollision {
        /// The directory's path.
        path: String,
        /// The name that could not be made unique.
        name: String,
    },
    /// The path tables number directories with 16 bits.
    #[error("{count} directories; ISO 9660 path tables hold at most 65535")]
    TooManyDirectories {
        /// The number of directories.
        count: usize,
    },
    /// The image would exceed 2^32 blocks.
    #[error("the image would be larger than 2^32 blocks of 2048 bytes")]
    ImageTooLarge,
    /// A time does not fit the ISO 9660 date fields (years 1900 to 2155).
    #[error("{what}: {seconds} seconds since 1970 is outside the ISO 9660 date range")]
    TimeOutOfRange {
        /// Which time.
        what: &'static str,
        /// The value.
        seconds: u64,
    },
    /// An identifier in the options is not valid.
    #[error("the {field} {value:?} is not valid: {problem}")]
    BadIdentifier {
        /// Which identifier.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Reading a file's data from the cpio failed or came up short.
    #[error("cannot copy the data of {path:?} ({len} bytes at cpio offset {offset})")]
    ReadData {
        /// The file's path.
        path: String,
        /// The offset of its data in the cpio.
        offset: u64,
        /// Its size.
        len: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing the image failed.
    #[error("cannot write the ISO image at byte {offset}")]
    Write {
        /// How many bytes of the image had been written.
        offset: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// `Result` of this module.
pub type Result<T> = std::result::Result<T, Error>;
