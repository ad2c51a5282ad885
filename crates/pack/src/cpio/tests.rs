//! Tests of the cpio reader and writer.
//!
//! - `sample_*`: known answers from `sample.cpio` (GNU cpio 2.13) and its listing decoded by an
//!   independent Python decoder, both in the shared vectors (`$SECRETVM_VECTORS`).
//! - `malformed`: one table of hostile archives, each a precise defect in a valid archive.
//! - `gnu_cpio`: interoperability with the `cpio` binary, when it is installed.
//! - The rest: the crc format, the writer's checks, streaming of large entries and the replay of
//!   fuzzer-found inputs from `test_data/cpio/fuzz-failures/`.

// Tests say why they skip when an optional input (vectors, the cpio binary) is missing.
#![allow(clippy::print_stderr)]

mod gnu_cpio;
mod malformed;

use std::io::{self, Read};
use std::num::NonZeroU32;
use std::path::PathBuf;

use super::{
    Entry, Error, ErrorKind, FileType, Format, Header, PATH_MAX, Reader, Writer, check_roundtrip,
    checksum,
};

/// The shared vectors directory, or `None` (after saying why) when it is missing.
fn vectors_dir() -> Option<PathBuf> {
    secretvm_testkit::vector("packing/sample.cpio")?;
    secretvm_testkit::vectors()
}

/// Rounds `len` up to a multiple of 4, as the format pads names and data.
fn pad4(len: u64) -> u64 {
    len.div_ceil(4) * 4
}

/// The UTF-8 error of `bytes`, which must not be UTF-8.
fn utf8_error(bytes: &[u8]) -> std::str::Utf8Error {
    std::str::from_utf8(bytes).unwrap_err()
}

/// Reads all data of an entry, turning a `Read` error back into the cpio error.
fn read_data<R: Read>(entry: &mut Entry<'_, R>) -> Result<Vec<u8>, Error> {
    let mut data = Vec::new();
    entry
        .read_to_end(&mut data)
        .map_err(|err| Error::from_io_error(err).expect("entry errors carry a cpio error"))?;
    Ok(data)
}

/// One line of `sample.cpio.headers.txt`: the newc fields in decimal (mode in octal).
#[derive(Debug)]
struct Listed {
    offset: u64,
    fields: [u32; 13],
    name: String,
    target: Option<String>,
}

impl Listed {
    fn parse(line: &str) -> Listed {
        let mut parts = line.splitn(15, ' ');
        let offset = parts.next().unwrap().parse().unwrap();
        let mut fields = [0u32; 13];
        for (index, field) in fields.iter_mut().enumerate() {
            let text = parts.next().unwrap();
            // The second column, mode, is octal; the others are decimal.
            *field = if index == 1 {
                u32::from_str_radix(text, 8).unwrap()
            } else {
                text.parse().unwrap()
            };
        }
        let rest = parts.next().unwrap();
        let (name, target) = if fields[1] & 0o170000 == 0o120000 {
            let (name, target) = rest.split_once(" -> ").unwrap();
            (name.to_owned(), Some(target.to_owned()))
        } else {
            (rest.to_owned(), None)
        };
        Listed { offset, fields, name, target }
    }
}

/// The parsed listing: every header line, and the numbers of the final summary line.
fn sample_listing(dir: &std::path::Path) -> (Vec<Listed>, Vec<u64>) {
    let text = std::fs::read_to_string(dir.join("packing/sample.cpio.headers.txt")).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("offset ino mode"));
    let mut listed = Vec::new();
    let mut summary = Vec::new();
    for line in lines {
        if let Some(comment) = line.strip_prefix('#') {
            summary = comment
                .split(|c: char| !c.is_ascii_digit())
                .filter(|word| !word.is_empty())
                .map(|number| number.parse().unwrap())
                .collect();
        } else {
            listed.push(Listed::parse(line));
        }
    }
    (listed, summary)
}

#[test]
fn sample_known_answers() {
    let Some(dir) = vectors_dir() else { return };
    let archive = std::fs::read(dir.join("packing/sample.cpio")).unwrap();
    let (listed, summary) = sample_listing(&dir);
    // "archive length A, trailer ends at T, trailing zero padding P bytes (... 512)".
    let [archive_len, trailer_end, zero_padding, 512] = summary[..] else {
        panic!("unexpected summary line {summary:?}");
    };
    let (trailer, entries) = listed.split_last().unwrap();
    // `cpio -it < sample.cpio | wc -l` also gives 365 (SOURCES.md says 361 entries, which is the
    // largest inode number: the five names of the two hard-link sets share two inodes).
    assert_eq!(entries.len(), 365);

    let mut reader = Reader::new(&archive[..]);
    let mut count = 0;
    for want in entries {
        let mut entry = reader.next_entry().unwrap().unwrap();
        let header = entry.header().clone();
        let [ino, mode, uid, gid, nlink, mtime, size, dmaj, dmin, rmaj, rmin, namesize, check] =
            want.fields;
        assert_eq!(entry.offset(), want.offset, "{}", want.name);
        assert_eq!(entry.format(), Format::Newc);
        let got = Header {
            name: want.name.clone(),
            ino,
            mode,
            uid,
            gid,
            nlink,
            mtime,
            file_size: size,
            dev_major: dmaj,
            dev_minor: dmin,
            rdev_major: rmaj,
            rdev_minor: rmin,
            check,
        };
        assert_eq!(header, got);
        // No name in the sample has a `./` prefix, so the stored name is the whole name.
        assert_eq!(header.name.len() + 1, namesize as usize);
        match &want.target {
            Some(target) => assert_eq!(&entry.read_symlink_target().unwrap(), target),
            None => assert_eq!(read_data(&mut entry).unwrap().len(), size as usize),
        }
        count += 1;
    }
    assert!(reader.next_entry().unwrap().is_none());
    assert_eq!(count, 365);

    // The trailer line: its header plus its 11-byte name, padded, ends where the reader stopped.
    assert_eq!(trailer.name, "TRAILER!!!");
    assert_eq!(trailer.offset + pad4(110 + u64::from(trailer.fields[11])), trailer_end);
    assert_eq!(reader.offset(), trailer_end);
    assert_eq!(archive.len() as u64, archive_len);
    let tail = &archive[trailer_end as usize..];
    assert_eq!(tail.len() as u64, zero_padding);
    assert!(tail.iter().all(|&byte| byte == 0));
}

#[test]
fn sample_rewrites_to_the_same_bytes() {
    let Some(dir) = vectors_dir() else { return };
    let archive = std::fs::read(dir.join("packing/sample.cpio")).unwrap();
    let (_, summary) = sample_listing(&dir);
    let trailer_end = summary[1] as usize;

    // Entries stream straight from the reader into the writer.
    let copy = |writer: &mut Writer<Vec<u8>>| {
        let mut reader = Reader::new(&archive[..]);
        while let Some(mut entry) = reader.next_entry().unwrap() {
            let header = entry.header().clone();
            writer.append(&header, &mut entry).unwrap();
        }
    };

    // GNU cpio pads the output to 512 bytes and `finish` pads to 4, so `finish` gives the
    // archive up to the end of the trailer.
    let mut writer = Writer::new(Vec::new(), Format::Newc);
    copy(&mut writer);
    let written = writer.finish().unwrap();
    assert_eq!(written.len(), trailer_end);
    assert!(written == archive[..trailer_end], "rewritten archive differs from sample.cpio");

    // With GNU's block size the whole file is reproduced.
    let mut writer = Writer::new(Vec::new(), Format::Newc);
    copy(&mut writer);
    let written = writer.finish_padded(NonZeroU32::new(512).unwrap()).unwrap();
    assert!(written == archive, "padded rewrite differs from sample.cpio");

    check_roundtrip(&archive);
}

/// A small tree in memory: (header, data).
fn small_tree() -> Vec<(Header, Vec<u8>)> {
    let entry = |name: &str, mode: u32, data: &[u8]| {
        let header = Header {
            name: name.to_owned(),
            mode,
            nlink: 1,
            mtime: 1_700_000_000,
            file_size: data.len() as u32,
            ..Header::default()
        };
        (header, data.to_vec())
    };
    vec![
        entry(".", 0o40755, b""),
        entry("d", 0o40700, b""),
        entry("d/f", 0o100644, b"hello"),
        entry("d/empty", 0o100600, b""),
        entry("l", 0o120777, b"d/f"),
        entry("null", 0o20666, b""),
    ]
}

/// Writes `tree`, filling in the crc checksum of regular files for [`Format::Crc`].
fn write_tree(format: Format, tree: &[(Header, Vec<u8>)]) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new(), format);
    for (header, data) in tree {
        let mut header = header.clone();
        if format == Format::Crc && header.file_type() == Some(FileType::Regular) {
            header.check = checksum(data);
        }
        writer.append(&header, &data[..]).unwrap();
    }
    writer.finish().unwrap()
}

#[test]
fn checksum_known_answers() {
    // GNU cpio 2.13 `-H crc` writes check 00000214 for a file containing "hello".
    assert_eq!(checksum(b"hello"), 0x214);
    assert_eq!(checksum(b""), 0);
    // 0xff * 16843010 = 4294967550 = 2^32 + 254: the sum wraps.
    assert_eq!(checksum(&vec![0xff; 16_843_010]), 254);
}

#[test]
fn crc_archive_round_trips() {
    let tree = small_tree();
    let archive = write_tree(Format::Crc, &tree);
    assert_eq!(&archive[..6], b"070702");
    let mut reader = Reader::new(&archive[..]);
    for (header, data) in &tree {
        let mut entry = reader.next_entry().unwrap().unwrap();
        assert_eq!(entry.format(), Format::Crc);
        assert_eq!(&entry.header().name, &header.name);
        let want_check = if header.name == "d/f" { 0x214 } else { 0 };
        assert_eq!(entry.header().check, want_check, "{}", header.name);
        assert_eq!(&read_data(&mut entry).unwrap(), data);
    }
    assert!(reader.next_entry().unwrap().is_none());
    assert_eq!(reader.format(), Some(Format::Crc));
    check_roundtrip(&archive);
}

#[test]
fn crc_mismatch_is_reported_when_reading_and_when_skipping() {
    let archive = write_tree(Format::Crc, &small_tree());
    // "d/f" is the third entry: "." (110 + 2 → 112) and "d" (110 + 2 → 112), then its header
    // and name (110 + 4 → 116) before the data.
    let entry_offset = 112 + 112;
    let data_offset = entry_offset + 116;
    assert_eq!(&archive[data_offset..data_offset + 5], b"hello");
    let mut corrupted = archive.clone();
    corrupted[data_offset] = b'j';
    let want = ErrorKind::ChecksumMismatch { expected: 0x214, actual: 0x214 + 2 };

    let mut reader = Reader::new(&corrupted[..]);
    reader.next_entry().unwrap();
    reader.next_entry().unwrap();
    let mut entry = reader.next_entry().unwrap().unwrap();
    let mut first = [0u8; 4];
    entry.read_exact(&mut first).unwrap();
    // The mismatch shows with the last byte.
    let err = Error::from_io_error(entry.read(&mut [0u8; 8]).unwrap_err()).unwrap();
    assert_eq!(format!("{:?}", err.kind()), format!("{want:?}"));
    assert_eq!(err.offset(), entry_offset as u64);
    assert_eq!(err.entry(), Some("d/f"));
    assert!(matches!(reader.next_entry().unwrap_err().kind(), ErrorKind::PreviousError));

    let mut reader = Reader::new(&corrupted[..]);
    for _ in 0..3 {
        reader.next_entry().unwrap();
    }
    let err = reader.next_entry().unwrap_err();
    assert_eq!(format!("{:?}", err.kind()), format!("{want:?}"));
    assert_eq!(err.offset(), entry_offset as u64);
}

#[test]
fn newc_ignores_check_and_keeps_it() {
    let (mut header, data) = small_tree().swap_remove(2);
    header.check = 12345;
    let mut writer = Writer::new(Vec::new(), Format::Newc);
    writer.append(&header, &data[..]).unwrap();
    let archive = writer.finish().unwrap();
    let mut reader = Reader::new(&archive[..]);
    let mut entry = reader.next_entry().unwrap().unwrap();
    assert_eq!(entry.header(), &header);
    assert_eq!(read_data(&mut entry).unwrap(), data);
}

#[test]
fn error_messages() {
    let err = Error::new(1234, Some("etc/foo".to_owned()), ErrorKind::DotDotComponent);
    expect_test::expect![[r#"cpio entry "etc/foo" at byte 1234: name has a ".." component"#]]
        .assert_eq(&err.to_string());
    let err = Error::new(0, None, ErrorKind::BadMagic { found: *b"07\x0107\n" });
    expect_test::expect![[r#"cpio header at byte 0: bad magic "07\x0107\n", expected "070701" (newc) or "070702" (crc)"#]]
        .assert_eq(&err.to_string());
    let err = Error::new(8, Some("a\nb".to_owned()), ErrorKind::Io(io::Error::other("disk full")));
    expect_test::expect![[r#"cpio entry "a\nb" at byte 8: I/O error"#]].assert_eq(&err.to_string());
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "disk full");
}

#[test]
fn file_types() {
    let all = [
        (FileType::Regular, 0o100000),
        (FileType::Directory, 0o040000),
        (FileType::Symlink, 0o120000),
        (FileType::CharDevice, 0o020000),
        (FileType::BlockDevice, 0o060000),
        (FileType::Fifo, 0o010000),
        (FileType::Socket, 0o140000),
    ];
    for (file_type, bits) in all {
        assert_eq!(file_type.mode_bits(), bits);
        assert_eq!(FileType::from_mode(bits | 0o7777), Some(file_type));
    }
    assert_eq!(FileType::from_mode(0o644), None);
    assert_eq!(FileType::from_mode(0o030644), None);
    assert_eq!(FileType::from_mode(0o1100644), None);
    let header = Header { mode: 0o104755, ..Header::default() };
    assert_eq!(header.permissions(), 0o4755);
    assert_eq!(header.file_type(), Some(FileType::Regular));
}

/// Checks that the writer rejects `header` with `data`, with this kind, before or while writing,
/// and that it refuses to go on afterwards.
fn check_writer_rejects(format: Format, header: &Header, data: &[u8], want: ErrorKind) {
    let mut writer = Writer::new(Vec::new(), format);
    writer
        .append(&Header { name: "x".to_owned(), mode: 0o40755, ..Header::default() }, &[][..])
        .unwrap();
    let err = writer.append(header, data).unwrap_err();
    assert_eq!(format!("{:?}", err.kind()), format!("{want:?}"), "{:?}", header.name);
    assert_eq!(err.offset(), 112);
    assert_eq!(err.entry(), Some(header.name.as_str()));
    assert!(matches!(writer.finish().unwrap_err().kind(), ErrorKind::PreviousError));
}

#[test]
fn writer_rejects_what_the_reader_rejects() {
    let file = |name: &str, size: u32| Header {
        name: name.to_owned(),
        mode: 0o100644,
        file_size: size,
        ..Header::default()
    };
    let symlink = |size: u32| Header { mode: 0o120777, ..file("l", size) };
    let cases: Vec<(Header, &[u8], ErrorKind)> = vec![
        (file("", 0), b"", ErrorKind::EmptyName),
        (file("/etc/x", 0), b"", ErrorKind::AbsolutePath),
        (file("./etc", 0), b"", ErrorKind::DotComponent),
        (file("a/./b", 0), b"", ErrorKind::DotComponent),
        (file("../x", 0), b"", ErrorKind::DotDotComponent),
        (file("a/..", 0), b"", ErrorKind::DotDotComponent),
        (file("a//b", 0), b"", ErrorKind::EmptyComponent),
        (file("a/", 0), b"", ErrorKind::EmptyComponent),
        (file("a\0b", 0), b"", ErrorKind::NameHasNul { position: 1 }),
        (file("TRAILER!!!", 0), b"", ErrorKind::ReservedName),
        (file(&"n".repeat(PATH_MAX + 1), 0), b"", ErrorKind::NameTooLong { size: 4098 }),
        (Header { mode: 0o644, ..file("a", 0) }, b"", ErrorKind::UnknownFileType { mode: 0o644 }),
        (
            Header { mode: 0o40755, ..file("a", 1) },
            b"x",
            ErrorKind::UnexpectedData { file_type: FileType::Directory, size: 1 },
        ),
        (file("a", 3), b"ab", ErrorKind::DataTooShort { expected: 3, got: 2 }),
        (file("a", 1), b"ab", ErrorKind::DataTooLong { expected: 1 }),
        (symlink(0), b"", ErrorKind::SymlinkTargetSize { size: 0 }),
        (symlink(4097), &[b'a'; 4097], ErrorKind::SymlinkTargetSize { size: 4097 }),
        (symlink(3), b"a\0b", ErrorKind::SymlinkTargetHasNul { position: 1 }),
        (symlink(3), b"ab", ErrorKind::DataTooShort { expected: 3, got: 2 }),
        (symlink(1), b"ab", ErrorKind::DataTooLong { expected: 1 }),
        (symlink(2), b"a\xff", ErrorKind::SymlinkTargetNotUtf8 { source: utf8_error(b"a\xff") }),
    ];
    for (header, data, want) in cases {
        check_writer_rejects(Format::Newc, &header, data, want);
    }
    // In the crc format the check field must be the data's checksum ("hello" sums to 0x214).
    let header = Header { check: 0x215, ..file("a", 5) };
    let want = ErrorKind::ChecksumMismatch { expected: 0x215, actual: 0x214 };
    check_writer_rejects(Format::Crc, &header, b"hello", want);
}

#[test]
fn reader_accepts_edge_cases() {
    let longest = "n".repeat(PATH_MAX);
    let target = "t".repeat(PATH_MAX);
    let mut writer = Writer::new(Vec::new(), Format::Newc);
    let entries = [
        Header { name: ".".to_owned(), mode: 0o40755, ..Header::default() },
        Header { name: longest.clone(), mode: 0o100644, ..Header::default() },
        Header {
            name: "long-link".to_owned(),
            mode: 0o120777,
            file_size: PATH_MAX as u32,
            ..Header::default()
        },
    ];
    writer.append(&entries[0], &[][..]).unwrap();
    writer.append(&entries[1], &[][..]).unwrap();
    writer.append(&entries[2], target.as_bytes()).unwrap();
    let mut archive = writer.finish().unwrap();
    // Bytes after the trailer are ignored, whatever they are.
    archive.extend_from_slice(b"garbage after the trailer");
    let mut reader = Reader::new(&archive[..]);
    assert_eq!(reader.next_entry().unwrap().unwrap().header(), &entries[0]);
    assert_eq!(reader.next_entry().unwrap().unwrap().header().name, longest);
    let mut link = reader.next_entry().unwrap().unwrap();
    assert_eq!(link.read_symlink_target().unwrap(), target);
    assert!(reader.next_entry().unwrap().is_none());
    assert!(reader.next_entry().unwrap().is_none());
    check_roundtrip(&archive);
}

#[test]
fn reader_normalizes_dot_slash_and_accepts_lowercase_hex() {
    // A header as GNU cpio writes for `find .` input without stripping, in lowercase hex.
    let mut archive = Vec::new();
    for (name, mode) in [("./etc", 0o40755u32), ("./etc/x", 0o100644)] {
        let start = archive.len();
        let namesize = name.len() + 1;
        archive.extend_from_slice(
            format!("070701{:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{namesize:08x}{:08x}", 7, 0, 0, 1, 0xabcdef, 0, 0, 0, 0, 0, 0)
                .as_bytes(),
        );
        archive.extend_from_slice(name.as_bytes());
        archive.push(0);
        archive.resize(start + pad4((110 + namesize) as u64) as usize, 0);
    }
    let trailer = format!("070701{}{:08x}{:08x}", "00000000".repeat(11), 11, 0);
    archive.extend_from_slice(trailer.as_bytes());
    archive.extend_from_slice(b"TRAILER!!!\0\0\0\0");
    let mut reader = Reader::new(&archive[..]);
    let entry = reader.next_entry().unwrap().unwrap();
    assert_eq!(entry.header().name, "etc");
    assert_eq!(entry.header().mtime, 0xabcdef);
    assert_eq!(entry.header().ino, 7);
    assert_eq!(reader.next_entry().unwrap().unwrap().header().name, "etc/x");
    assert!(reader.next_entry().unwrap().is_none());
    assert_eq!(reader.offset(), archive.len() as u64);
}

#[test]
fn symlink_target_is_only_for_fresh_symlinks() {
    let archive = write_tree(Format::Newc, &small_tree());
    let mut reader = Reader::new(&archive[..]);
    let mut names = Vec::new();
    while let Some(mut entry) = reader.next_entry().unwrap() {
        let name = entry.header().name.clone();
        if name == "d/f" {
            let err = entry.read_symlink_target().unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::NotASymlink), "{err}");
        }
        if name == "l" {
            entry.read_exact(&mut [0u8; 1]).unwrap();
            let err = entry.read_symlink_target().unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::DataAlreadyRead), "{err}");
        }
        names.push(name);
    }
    assert_eq!(names, [".", "d", "d/f", "d/empty", "l", "null"]);
}

/// A `Read` that records the largest buffer it was asked to fill.
struct Probe<R> {
    inner: R,
    largest_request: usize,
}

impl<R: Read> Read for Probe<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.largest_request = self.largest_request.max(buf.len());
        self.inner.read(buf)
    }
}

/// A newc or crc header for a 100 MB file of zeros, its name and padding, generated on the fly.
fn big_archive(format: Format, size: u32) -> impl Read {
    let name = b"big.bin\0";
    // Written by hand: ino 1, mode 100644, nlink 1, the size, the namesize; checksum 0 for zeros.
    let fields = [1, 0o100644, 0, 0, 1, 0, size, 0, 0, 0, 0, name.len() as u32, 0];
    let mut head = format.magic().to_vec();
    for field in fields {
        head.extend_from_slice(format!("{field:08X}").as_bytes());
    }
    assert_eq!(head.len(), 110);
    head.extend_from_slice(name);
    head.resize(pad4(head.len() as u64) as usize, 0);
    let mut tail = vec![0u8; (pad4(u64::from(size)) - u64::from(size)) as usize];
    tail.extend_from_slice(&Writer::new(Vec::new(), format).finish().unwrap());
    io::Cursor::new(head).chain(io::repeat(0).take(u64::from(size))).chain(io::Cursor::new(tail))
}

#[test]
fn large_entries_stream_through_bounded_buffers() {
    const SIZE: u32 = 100_000_000;
    // Reading the data through a 4 KiB buffer.
    let mut reader =
        Reader::new(Probe { inner: big_archive(Format::Newc, SIZE), largest_request: 0 });
    let mut entry = reader.next_entry().unwrap().unwrap();
    assert_eq!(entry.header().file_size, SIZE);
    let mut buf = [0u8; 4096];
    let mut total = 0u64;
    loop {
        let n = entry.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&byte| byte == 0));
        total += n as u64;
    }
    assert_eq!(total, u64::from(SIZE));
    assert!(reader.next_entry().unwrap().is_none());
    let probe = reader.into_inner();
    assert!(probe.largest_request <= 8192, "asked for {} bytes", probe.largest_request);

    // Skipping the data unread, with the crc checksum computed on the way.
    let mut reader =
        Reader::new(Probe { inner: big_archive(Format::Crc, SIZE), largest_request: 0 });
    assert_eq!(reader.next_entry().unwrap().unwrap().header().file_size, SIZE);
    assert!(reader.next_entry().unwrap().is_none());
    assert_eq!(reader.offset(), 120 + u64::from(SIZE) + 124);
    assert!(reader.into_inner().largest_request <= 8192);
}

/// An in-memory seekable source that counts the bytes actually read from it.
struct CountingCursor {
    inner: io::Cursor<Vec<u8>>,
    bytes_read: u64,
}

impl Read for CountingCursor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes_read += n as u64;
        Ok(n)
    }
}

impl io::Seek for CountingCursor {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn seekable_sources_skip_data_without_reading_it() {
    const SIZE: u32 = 10_000_000;
    for format in [Format::Newc, Format::Crc] {
        // Seven bytes before the archive: the reader starts at the source's current position.
        let mut archive = b"prefix!".to_vec();
        big_archive(format, SIZE).read_to_end(&mut archive).unwrap();
        let len = archive.len() as u64 - 7;
        let mut source = CountingCursor { inner: io::Cursor::new(archive), bytes_read: 0 };
        source.inner.set_position(7);
        let mut reader = Reader::new_seekable(source).unwrap();
        assert_eq!(reader.next_entry().unwrap().unwrap().header().file_size, SIZE);
        assert!(reader.next_entry().unwrap().is_none());
        assert_eq!(reader.offset(), len);
        let source = reader.into_inner();
        match format {
            // Only the headers, the names and their padding are read.
            Format::Newc => assert!(source.bytes_read < 300, "read {} bytes", source.bytes_read),
            // crc data is read to verify its checksum.
            Format::Crc => assert_eq!(source.bytes_read, len),
        }
    }

    // A seekable source shorter than its headers claim is truncated, as when reading.
    let mut archive = Vec::new();
    big_archive(Format::Newc, SIZE).read_to_end(&mut archive).unwrap();
    archive.truncate(1000);
    let mut reader = Reader::new_seekable(io::Cursor::new(&archive[..])).unwrap();
    assert!(reader.next_entry().unwrap().is_some());
    let err = reader.next_entry().unwrap_err();
    assert_eq!(
        format!("{:?}", err.kind()),
        format!(
            "{:?}",
            ErrorKind::Truncated { what: "data", expected: u64::from(SIZE), got: 1000 - 120 }
        )
    );
}

#[test]
fn fuzz_failures_replay() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_data/cpio/fuzz-failures");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "cpio") {
            check_roundtrip(&std::fs::read(&path).unwrap());
            replayed += 1;
        }
    }
    assert!(dir.join("README.md").is_file());
    eprintln!("replayed {replayed} fuzz failure(s)");
}

#[test]
fn roundtrip_survives_arbitrary_bytes() {
    // A cheap deterministic sweep next to the fuzzer: every prefix and every single-byte change
    // of a small valid archive.
    let archive = write_tree(Format::Crc, &small_tree());
    for len in 0..=archive.len() {
        check_roundtrip(&archive[..len]);
    }
    for position in 0..archive.len() {
        for value in [0u8, b'0', b'7', b'F', b'/', b'.', 0xff] {
            let mut mutated = archive.clone();
            mutated[position] = value;
            check_roundtrip(&mutated);
        }
    }
}
