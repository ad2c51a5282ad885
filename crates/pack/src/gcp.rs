//! The Google Compute Engine image import format: a gzip-compressed tar archive holding one
//! regular file, `disk.raw`, with fixed metadata so that the same disk gives the same bytes.
//!
//! The archive is a GNU "oldgnu" tar stream (magic `ustar  `), the format Google's import
//! instructions make with `tar --format=oldgnu -Sczf`: mode 0644, owner 0:0 with empty user
//! and group names, the given mtime, then two zero blocks and zero padding to a multiple of the
//! 10240-byte record, as GNU tar does. Numbers too large for 11 octal digits use GNU's base-256
//! form.
//!
//! Sparse (the default): the disk is scanned in 512-byte blocks and every all-zero block is a
//! hole, so the map depends only on the disk's bytes, never on how the file system stores them.
//! The member is then an old-GNU sparse file (type `S`): four map entries in the header, 21 in
//! each extension block, the real size in `realsize`, and only the data blocks stored; a disk
//! that ends in a hole gets a last, empty entry at its end, as GNU tar writes.
//! The layout is GNU tar's `struct oldgnu_header` and `struct sparse_header` (`src/tar.h`).
//!
//! gzip has no name, mtime 0 and OS byte 3 (see [`crate::initramfs::gzip`]).

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::initramfs;

/// The tar block size.
const BLOCK: usize = 512;
/// GNU tar's default record size (blocking factor 20).
const RECORD: u64 = 10240;
/// Map entries in an old-GNU header, and in each extension block.
const SPARSES_IN_HEADER: usize = 4;
const SPARSES_IN_EXTENSION: usize = 21;

/// How to write the tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The name of the single member.
    pub name: String,
    /// Its modification time (`SOURCE_DATE_EPOCH`).
    pub mtime: u64,
    /// The gzip level, 1 to 9.
    pub gzip_level: u32,
    /// Store all-zero 512-byte blocks as holes of an old-GNU sparse member.
    pub sparse: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { name: "disk.raw".to_owned(), mtime: 0, gzip_level: 6, sparse: true }
    }
}

/// Why the tarball could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The member name does not fit the 100-byte name field, or is empty.
    #[error("tar member name {name:?} must be 1 to 100 bytes without NUL")]
    BadName {
        /// The name given.
        name: String,
    },
    /// The mtime does not fit the 11 octal digits of the header.
    #[error("mtime {mtime} does not fit a tar header")]
    BadMtime {
        /// The value given.
        mtime: u64,
    },
    /// The disk ended before `len` bytes.
    #[error("the disk ended after {got} of {expected} bytes")]
    ShortRead {
        /// The announced size.
        expected: u64,
        /// The bytes read.
        got: u64,
    },
    /// Reading the disk failed.
    #[error("cannot read the disk at byte {offset}")]
    Read {
        /// Where.
        offset: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing the tarball failed.
    #[error("cannot write the tarball")]
    Write(#[source] io::Error),
}

/// `Result` of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// A run of data: offset in the disk and length.
type Chunk = (u64, u64);

/// Writes the `len` bytes of `disk` (read from its start; read twice when sparse) as the
/// gzip-compressed tarball into `out`, and returns `out`.
pub fn write<R: Read + Seek, W: Write>(len: u64, disk: R, options: &Options, out: W) -> Result<W> {
    write_observed(len, disk, options, out, &mut |_| {})
}

/// [`write()`], showing `observe` every byte of the disk once, in order, as it is read: for a
/// digest of the disk without a read of its own.
pub fn write_observed<R: Read + Seek, W: Write>(
    len: u64,
    mut disk: R,
    options: &Options,
    out: W,
    observe: &mut dyn FnMut(&[u8]),
) -> Result<W> {
    // Sparse: the scan reads the whole disk in order, and the copy re-reads its data runs.
    // Not sparse: the copy is the one read.
    let map = if options.sparse { scan(len, &mut disk, &mut *observe)? } else { vec![(0, len)] };
    let stored: u64 = map.iter().map(|c| c.1).sum();
    let sparse = options.sparse && !(map.len() == 1 && map[0] == (0, len));
    let headers = if sparse {
        sparse_headers(len, stored, &map, options)?
    } else {
        vec![header(len, options, b'0')?]
    };
    let mut gz = initramfs::gzip(out, options.gzip_level);
    for block in &headers {
        gz.write_all(block).map_err(Error::Write)?;
    }
    for &(offset, chunk_len) in &map {
        if chunk_len == 0 {
            continue;
        }
        disk.seek(SeekFrom::Start(offset)).map_err(|source| Error::Read { offset, source })?;
        let observe = if options.sparse { None } else { Some(&mut *observe) };
        let mut data = Observed { inner: (&mut disk).take(chunk_len), observe };
        let copied = io::copy(&mut data, &mut gz).map_err(|err| {
            if err.kind() == io::ErrorKind::WriteZero {
                Error::Write(err)
            } else {
                Error::Read { offset, source: err }
            }
        })?;
        if copied != chunk_len {
            return Err(Error::ShortRead { expected: len, got: offset + copied });
        }
    }
    let header_bytes = (headers.len() * BLOCK) as u64;
    let data_end = header_bytes + stored.div_ceil(BLOCK as u64) * BLOCK as u64;
    let end = (data_end + 2 * BLOCK as u64).div_ceil(RECORD) * RECORD;
    let tail = end - (header_bytes + stored);
    io::copy(&mut io::repeat(0).take(tail), &mut gz).map_err(Error::Write)?;
    gz.finish().map_err(Error::Write)
}

/// A reader that shows what it reads to an optional observer.
/// What is shown the bytes of the disk.
type Observer<'b> = dyn FnMut(&[u8]) + 'b;

struct Observed<'a, 'b, R> {
    inner: R,
    observe: Option<&'a mut Observer<'b>>,
}

impl<R: Read> Read for Observed<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(observe) = self.observe.as_mut() {
            observe(buf.get(..n).unwrap_or(buf));
        }
        Ok(n)
    }
}

/// The data runs of the disk: maximal runs of 512-byte blocks that are not all zero, ending
/// with an empty run at `len` when the disk ends in a hole. `observe` sees every byte read.
fn scan<R: Read + Seek>(
    len: u64,
    disk: &mut R,
    observe: &mut dyn FnMut(&[u8]),
) -> Result<Vec<Chunk>> {
    disk.seek(SeekFrom::Start(0)).map_err(|source| Error::Read { offset: 0, source })?;
    let mut map: Vec<Chunk> = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    while offset < len {
        let want = usize::try_from(len - offset).map_or(buf.len(), |left| left.min(buf.len()));
        let got =
            read_full(disk, &mut buf[..want]).map_err(|source| Error::Read { offset, source })?;
        if got < want {
            return Err(Error::ShortRead { expected: len, got: offset + got as u64 });
        }
        observe(&buf[..want]);
        for block in buf[..want].chunks(BLOCK) {
            let block_len = block.len() as u64;
            if block.iter().any(|&b| b != 0) {
                match map.last_mut() {
                    Some(last) if last.0 + last.1 == offset => last.1 += block_len,
                    _ => map.push((offset, block_len)),
                }
            }
            offset += block_len;
        }
    }
    if map.last().is_none_or(|last| last.0 + last.1 < len) {
        map.push((len, 0));
    }
    Ok(map)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(input: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Writes `value` as zero-padded octal digits followed by a NUL into `field`, or in GNU's
/// base-256 form (high bit set, big-endian) when it does not fit.
fn number(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() <= digits {
        field[..digits].copy_from_slice(text.as_bytes());
        field[digits] = 0;
    } else {
        field.fill(0);
        let n = field.len();
        field[n - 8..].copy_from_slice(&value.to_be_bytes());
        field[0] = 0x80;
    }
}

/// Writes one map entry (offset and length, 12 bytes each).
fn map_entry(field: &mut [u8], chunk: Chunk) {
    number(&mut field[..12], chunk.0);
    number(&mut field[12..24], chunk.1);
}

/// The 512-byte header of the member (POSIX ustar layout with the GNU magic), without checksum.
fn header(size: u64, options: &Options, typeflag: u8) -> Result<[u8; BLOCK]> {
    let mut h = [0u8; BLOCK];
    let name = options.name.as_bytes();
    if name.is_empty() || name.len() > 100 || name.contains(&0) {
        return Err(Error::BadName { name: options.name.clone() });
    }
    h[..name.len()].copy_from_slice(name);
    number(&mut h[100..108], 0o644);
    number(&mut h[108..116], 0);
    number(&mut h[116..124], 0);
    number(&mut h[124..136], size);
    let mut mtime = [0u8; 12];
    number(&mut mtime, options.mtime);
    if mtime[0] & 0x80 != 0 {
        return Err(Error::BadMtime { mtime: options.mtime });
    }
    h[136..148].copy_from_slice(&mtime);
    h[156] = typeflag;
    h[257..265].copy_from_slice(b"ustar  \0");
    checksum(&mut h);
    Ok(h)
}

/// Sets the header checksum: the byte sum with the field itself as spaces (POSIX ustar).
fn checksum(h: &mut [u8; BLOCK]) {
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}");
    h[148..154].copy_from_slice(text.as_bytes());
    h[154] = 0;
    h[155] = b' ';
}

/// The header and extension blocks of an old-GNU sparse member.
fn sparse_headers(
    len: u64,
    stored: u64,
    map: &[Chunk],
    options: &Options,
) -> Result<Vec<[u8; BLOCK]>> {
    let mut first = header(stored, options, b'S')?;
    let (head, rest) = map.split_at(map.len().min(SPARSES_IN_HEADER));
    for (i, &chunk) in head.iter().enumerate() {
        map_entry(&mut first[386 + 24 * i..386 + 24 * (i + 1)], chunk);
    }
    first[482] = u8::from(!rest.is_empty());
    number(&mut first[483..495], len);
    checksum(&mut first);
    let mut blocks = vec![first];
    let mut groups = rest.chunks(SPARSES_IN_EXTENSION).peekable();
    while let Some(group) = groups.next() {
        let mut block = [0u8; BLOCK];
        for (i, &chunk) in group.iter().enumerate() {
            map_entry(&mut block[24 * i..24 * (i + 1)], chunk);
        }
        block[504] = u8::from(groups.peek().is_some());
        blocks.push(block);
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn header_fields() {
        let options = Options { mtime: 1_650_000_000, ..Options::default() };
        let h = header(5, &options, b'0').unwrap();
        assert_eq!(&h[..9], b"disk.raw\0");
        assert_eq!(&h[124..136], b"00000000005\0");
        // `python3 -c "print(oct(1650000000))"` prints 0o14226200200.
        assert_eq!(&h[136..148], b"14226200200\0");
        // 9 GiB does not fit 11 octal digits.
        let big = header(9 << 30, &options, b'0').unwrap();
        assert_eq!(big[124], 0x80);
        assert_eq!(&big[128..136], &(9u64 << 30).to_be_bytes());
        assert!(header(1, &Options { name: String::new(), ..Options::default() }, b'0').is_err());
    }

    #[test]
    fn holes_are_all_zero_blocks() {
        let mut disk = vec![0u8; 10 * 512 + 100];
        disk[600] = 1; // block 1
        disk[3 * 512] = 2; // blocks 3 and 4
        disk[4 * 512 + 511] = 3;
        let map = scan(disk.len() as u64, &mut Cursor::new(&disk), &mut |_| {}).unwrap();
        assert_eq!(map, [(512, 512), (1536, 1024), (disk.len() as u64, 0)]);
        disk[10 * 512 + 99] = 4; // the partial last block
        let map = scan(disk.len() as u64, &mut Cursor::new(&disk), &mut |_| {}).unwrap();
        assert_eq!(map, [(512, 512), (1536, 1024), (5120, 100)]);
    }

    #[test]
    fn same_disk_same_bytes() {
        let disk = vec![7u8; 3000];
        let options = Options { mtime: 1_650_000_000, ..Options::default() };
        let a = write(disk.len() as u64, Cursor::new(&disk), &options, Vec::new()).unwrap();
        let b = write(disk.len() as u64, Cursor::new(&disk), &options, Vec::new()).unwrap();
        assert_eq!(a, b);
        let short = write(4000, Cursor::new(&disk), &options, Vec::new());
        assert!(matches!(short, Err(Error::ShortRead { expected: 4000, got: 3000 })));
    }

    #[test]
    fn the_observer_sees_the_disk_once_in_order() {
        // Data, a hole of more than one read buffer, data, a partial last block.
        let mut disk = vec![0u8; (3 << 20) + 700];
        disk[..5].copy_from_slice(b"first");
        disk[(2 << 20) + 512..(2 << 20) + 517].copy_from_slice(b"later");
        disk[(3 << 20) + 699] = 9;
        for sparse in [true, false] {
            let options = Options { sparse, ..Options::default() };
            let mut seen = Vec::new();
            let tar = write_observed(
                disk.len() as u64,
                Cursor::new(&disk),
                &options,
                Vec::new(),
                &mut |bytes| seen.extend_from_slice(bytes),
            )
            .unwrap();
            assert!(seen == disk, "sparse {sparse}: the observer saw other bytes");
            // Observing changes nothing in the tarball.
            let plain = write(disk.len() as u64, Cursor::new(&disk), &options, Vec::new());
            assert!(plain.unwrap() == tar, "sparse {sparse}");
        }
    }
}
