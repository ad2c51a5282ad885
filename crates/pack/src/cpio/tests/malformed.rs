//! Malformed archives: one table of cases and one check helper.
//!
//! Each case takes a valid archive, encoded here field by field without the writer under test,
//! and puts one precise defect in it.
//! The expected error (kind with its data, header offset and entry name) is computed from where
//! the defect was put.

use super::{pad4, utf8_error};
use crate::cpio::{Error, ErrorKind, FileType, Format, Reader};

/// Indices of header fields, in archive order.
const INO: usize = 0;
const MODE: usize = 1;
const NLINK: usize = 4;
const FILESIZE: usize = 6;
const NAMESIZE: usize = 11;
const CHECK: usize = 12;

const NEWC: [u8; 6] = *b"070701";
const CRC: [u8; 6] = *b"070702";

/// An entry exactly as it is encoded, so that any field can be made inconsistent.
#[derive(Clone)]
struct Raw {
    magic: [u8; 6],
    fields: [u32; 13],
    /// Replaces the hex text of one field.
    field_text: Option<(usize, [u8; 8])>,
    /// The name bytes as written, normally ending in NUL.
    name: Vec<u8>,
    data: Vec<u8>,
}

impl Raw {
    fn new(name: &str, mode: u32, data: &[u8]) -> Raw {
        let mut raw = Raw {
            magic: NEWC,
            fields: [0; 13],
            field_text: None,
            name: Vec::new(),
            data: Vec::new(),
        };
        raw.fields[MODE] = mode;
        raw.fields[NLINK] = 1;
        raw.set_name(format!("{name}\0").as_bytes());
        raw.set_data(data);
        raw
    }

    /// Sets the name bytes and a matching namesize.
    fn set_name(&mut self, name: &[u8]) {
        self.name = name.to_vec();
        self.fields[NAMESIZE] = name.len() as u32;
    }

    /// Sets the data and a matching filesize.
    fn set_data(&mut self, data: &[u8]) {
        self.data = data.to_vec();
        self.fields[FILESIZE] = data.len() as u32;
    }
}

/// Encodes entries (the trailer included, if wanted) and returns the bytes and the offset of
/// each entry.
fn encode(entries: &[Raw]) -> (Vec<u8>, Vec<u64>) {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for entry in entries {
        offsets.push(out.len() as u64);
        out.extend_from_slice(&entry.magic);
        for (index, value) in entry.fields.iter().enumerate() {
            match entry.field_text {
                Some((field, text)) if field == index => out.extend_from_slice(&text),
                _ => out.extend_from_slice(format!("{value:08X}").as_bytes()),
            }
        }
        out.extend_from_slice(&entry.name);
        out.resize(pad4(out.len() as u64) as usize, 0);
        out.extend_from_slice(&entry.data);
        out.resize(pad4(out.len() as u64) as usize, 0);
    }
    (out, offsets)
}

/// Entry indices of the base archive.
const ROOT: usize = 0;
const ETC: usize = 1;
const HELLO: usize = 2;
const LINK: usize = 3;
const ZZ: usize = 4;
const TRAILER: usize = 5;

/// The valid base archive, in newc or crc.
fn base(format: Format) -> Vec<Raw> {
    let mut entries = vec![
        Raw::new(".", 0o40755, b""),
        Raw::new("etc", 0o40755, b""),
        Raw::new("etc/hello.txt", 0o100644, b"hello\n"),
        Raw::new("etc/link", 0o120777, b"hello.txt"),
        Raw::new("etc/zz", 0o100644, b"zz"),
        Raw::new("TRAILER!!!", 0, b""),
    ];
    if format == Format::Crc {
        for entry in &mut entries {
            entry.magic = CRC;
        }
        // Byte sums: "hello\n" = 104 + 101 + 108 + 108 + 111 + 10, "zz" = 2 * 122.
        entries[HELLO].fields[CHECK] = 542;
        entries[ZZ].fields[CHECK] = 244;
    }
    entries
}

/// One malformed archive and the error it must produce.
struct Case {
    name: &'static str,
    archive: Vec<u8>,
    offset: u64,
    entry: Option<String>,
    kind: ErrorKind,
}

fn cases() -> Vec<Case> {
    let (valid, off) = encode(&base(Format::Newc));
    let (valid_crc, _) = encode(&base(Format::Crc));
    // Where the data of a base entry starts: after its header and padded name.
    let data_start =
        |index: usize| off[index] + pad4(110 + base(Format::Newc)[index].name.len() as u64);
    let mutate = |format: Format, change: &dyn Fn(&mut Vec<Raw>)| {
        let mut entries = base(format);
        change(&mut entries);
        encode(&entries).0
    };
    let newc = |change: &dyn Fn(&mut Vec<Raw>)| mutate(Format::Newc, change);
    let renamed = |index: usize, name: &'static [u8]| {
        newc(&|entries: &mut Vec<Raw>| entries[index].set_name(name))
    };
    let field_text = |index: usize, field: usize, text: &[u8; 8]| {
        newc(&|entries: &mut Vec<Raw>| entries[index].field_text = Some((field, *text)))
    };
    let field = |index: usize, field: usize, value: u32| {
        newc(&|entries: &mut Vec<Raw>| entries[index].fields[field] = value)
    };
    let cut = |len: u64| valid[..len as usize].to_vec();
    let some = |name: &str| Some(name.to_owned());
    let hello = some("etc/hello.txt");
    let case = |name, archive, offset, entry, kind| Case { name, archive, offset, entry, kind };

    vec![
        // Magic.
        case(
            "bad magic",
            newc(&|e| e[HELLO].magic = *b"070703"),
            off[HELLO],
            None,
            ErrorKind::BadMagic { found: *b"070703" },
        ),
        case(
            "odc magic",
            newc(&|e| e[ROOT].magic = *b"070707"),
            0,
            None,
            ErrorKind::UnsupportedFormat { format: "odc (magic \"070707\")" },
        ),
        case(
            "old binary magic",
            newc(&|e| e[ROOT].magic = [0xc7, 0x71, 0, 0, 0, 0]),
            0,
            None,
            ErrorKind::UnsupportedFormat { format: "old binary, little-endian (0x71c7)" },
        ),
        case(
            "crc header in a newc archive",
            newc(&|e| e[LINK].magic = CRC),
            off[LINK],
            None,
            ErrorKind::MixedFormats { first: Format::Newc, found: Format::Crc },
        ),
        // Hex fields.
        case(
            "non-hex letter in mode",
            field_text(HELLO, MODE, b"000081G4"),
            off[HELLO],
            None,
            ErrorKind::BadHexField { field: "mode", found: "000081G4".to_owned() },
        ),
        case(
            "spaces in filesize",
            field_text(HELLO, FILESIZE, b"     006"),
            off[HELLO],
            None,
            ErrorKind::BadHexField { field: "filesize", found: "     006".to_owned() },
        ),
        case(
            "plus sign in namesize",
            field_text(HELLO, NAMESIZE, b"+000000E"),
            off[HELLO],
            None,
            ErrorKind::BadHexField { field: "namesize", found: "+000000E".to_owned() },
        ),
        case(
            "0x prefix in ino",
            field_text(ETC, INO, b"0x000001"),
            off[ETC],
            None,
            ErrorKind::BadHexField { field: "ino", found: "0x000001".to_owned() },
        ),
        case(
            "NUL bytes in check",
            field_text(ZZ, CHECK, b"0000\0\0\0\0"),
            off[ZZ],
            None,
            ErrorKind::BadHexField { field: "check", found: r"0000\x00\x00\x00\x00".to_owned() },
        ),
        // Name size and bytes.
        case("namesize 0", field(HELLO, NAMESIZE, 0), off[HELLO], None, ErrorKind::NameSizeZero),
        case(
            "namesize 0xFFFFFFFF",
            field(HELLO, NAMESIZE, 0xFFFF_FFFF),
            off[HELLO],
            None,
            ErrorKind::NameTooLong { size: 0xFFFF_FFFF },
        ),
        case(
            "namesize PATH_MAX + 2",
            field(HELLO, NAMESIZE, 4098),
            off[HELLO],
            None,
            ErrorKind::NameTooLong { size: 4098 },
        ),
        case(
            "name without NUL",
            renamed(HELLO, b"etc/hello.txtX"),
            off[HELLO],
            None,
            ErrorKind::NameNotNulTerminated,
        ),
        case(
            "NUL inside name",
            renamed(HELLO, b"etc/he\0lo.txt\0"),
            off[HELLO],
            None,
            ErrorKind::NameHasNul { position: 6 },
        ),
        case(
            "non-UTF-8 name",
            renamed(HELLO, b"etc/\xff\xfe\0"),
            off[HELLO],
            None,
            ErrorKind::NameNotUtf8 { source: utf8_error(b"etc/\xff\xfe") },
        ),
        // Path rules.
        case("empty name", renamed(HELLO, b"\0"), off[HELLO], some(""), ErrorKind::EmptyName),
        case("name ./", renamed(HELLO, b"./\0"), off[HELLO], some("./"), ErrorKind::EmptyName),
        case(
            "absolute path",
            renamed(HELLO, b"/etc/passwd\0"),
            off[HELLO],
            some("/etc/passwd"),
            ErrorKind::AbsolutePath,
        ),
        case(
            "leading ..",
            renamed(HELLO, b"../x\0"),
            off[HELLO],
            some("../x"),
            ErrorKind::DotDotComponent,
        ),
        case(
            ".. in the middle",
            renamed(HELLO, b"a/../b\0"),
            off[HELLO],
            some("a/../b"),
            ErrorKind::DotDotComponent,
        ),
        case(
            "trailing ..",
            renamed(HELLO, b"etc/..\0"),
            off[HELLO],
            some("etc/.."),
            ErrorKind::DotDotComponent,
        ),
        case(
            "empty component",
            renamed(HELLO, b"a//b\0"),
            off[HELLO],
            some("a//b"),
            ErrorKind::EmptyComponent,
        ),
        case(
            "trailing slash",
            renamed(HELLO, b"etc/\0"),
            off[HELLO],
            some("etc/"),
            ErrorKind::EmptyComponent,
        ),
        case(
            ". component",
            renamed(HELLO, b"etc/./x\0"),
            off[HELLO],
            some("etc/./x"),
            ErrorKind::DotComponent,
        ),
        case(
            "./ twice",
            renamed(HELLO, b"././x\0"),
            off[HELLO],
            some("././x"),
            ErrorKind::DotComponent,
        ),
        case(
            "trailer name behind ./",
            renamed(HELLO, b"./TRAILER!!!\0"),
            off[HELLO],
            some("./TRAILER!!!"),
            ErrorKind::ReservedName,
        ),
        case(
            "duplicate path",
            renamed(ZZ, b"etc/hello.txt\0"),
            off[ZZ],
            hello.clone(),
            ErrorKind::DuplicatePath { first_offset: off[HELLO] },
        ),
        case(
            "duplicate path after stripping ./",
            newc(&|e| {
                e[ZZ] = Raw::new("./etc", 0o40755, b"");
            }),
            off[ZZ],
            some("etc"),
            ErrorKind::DuplicatePath { first_offset: off[ETC] },
        ),
        case(
            "duplicate root",
            renamed(ETC, b".\0"),
            off[ETC],
            some("."),
            ErrorKind::DuplicatePath { first_offset: off[ROOT] },
        ),
        // File types and sizes.
        case(
            "no file type bits",
            field(HELLO, MODE, 0o644),
            off[HELLO],
            hello.clone(),
            ErrorKind::UnknownFileType { mode: 0o644 },
        ),
        case(
            "mode above 16 bits",
            field(HELLO, MODE, 0o1100644),
            off[HELLO],
            hello.clone(),
            ErrorKind::UnknownFileType { mode: 0o1100644 },
        ),
        case(
            "symlink with size 0",
            newc(&|e| e[LINK].set_data(b"")),
            off[LINK],
            some("etc/link"),
            ErrorKind::SymlinkTargetSize { size: 0 },
        ),
        case(
            "symlink with size PATH_MAX + 1",
            newc(&|e| e[LINK].set_data(&[b'a'; 4097])),
            off[LINK],
            some("etc/link"),
            ErrorKind::SymlinkTargetSize { size: 4097 },
        ),
        case(
            "symlink target with NUL",
            newc(&|e| e[LINK].set_data(b"hello\0txt")),
            off[LINK],
            some("etc/link"),
            ErrorKind::SymlinkTargetHasNul { position: 5 },
        ),
        case(
            "non-UTF-8 symlink target",
            newc(&|e| e[LINK].set_data(b"hello\xff")),
            off[LINK],
            some("etc/link"),
            ErrorKind::SymlinkTargetNotUtf8 { source: utf8_error(b"hello\xff") },
        ),
        case(
            "directory with data",
            newc(&|e| e[ETC].set_data(b"dir!")),
            off[ETC],
            some("etc"),
            ErrorKind::UnexpectedData { file_type: FileType::Directory, size: 4 },
        ),
        case(
            "character device with data",
            field(ZZ, MODE, 0o20644),
            off[ZZ],
            some("etc/zz"),
            ErrorKind::UnexpectedData { file_type: FileType::CharDevice, size: 2 },
        ),
        case(
            "trailer with data",
            newc(&|e| e[TRAILER].set_data(b"junk")),
            off[TRAILER],
            None,
            ErrorKind::TrailerHasData { size: 4 },
        ),
        // Truncation.
        case("empty input", Vec::new(), 0, None, ErrorKind::MissingTrailer),
        case(
            "truncated in magic",
            cut(off[HELLO] + 3),
            off[HELLO],
            None,
            ErrorKind::Truncated { what: "header", expected: 110, got: 3 },
        ),
        case(
            "truncated in header fields",
            cut(off[HELLO] + 50),
            off[HELLO],
            None,
            ErrorKind::Truncated { what: "header", expected: 110, got: 50 },
        ),
        case(
            "truncated in name",
            cut(off[HELLO] + 110 + 4),
            off[HELLO],
            None,
            ErrorKind::Truncated { what: "name", expected: 14, got: 4 },
        ),
        case(
            // "etc" with its NUL is 4 bytes: 110 + 4 is padded with 2 zeros.
            "truncated in name padding",
            cut(off[ETC] + 110 + 4 + 1),
            off[ETC],
            None,
            ErrorKind::Truncated { what: "name padding", expected: 2, got: 1 },
        ),
        case(
            "truncated in data",
            cut(data_start(HELLO) + 3),
            off[HELLO],
            hello.clone(),
            ErrorKind::Truncated { what: "data", expected: 6, got: 3 },
        ),
        case(
            // "hello\n" is 6 bytes, padded with 2 zeros.
            "truncated in data padding",
            cut(data_start(HELLO) + 7),
            off[HELLO],
            hello.clone(),
            ErrorKind::Truncated { what: "data padding", expected: 2, got: 1 },
        ),
        case(
            "truncated in symlink target",
            cut(data_start(LINK) + 4),
            off[LINK],
            some("etc/link"),
            ErrorKind::Truncated { what: "data", expected: 9, got: 4 },
        ),
        case(
            "filesize past the end",
            field(ZZ, FILESIZE, 1000),
            off[ZZ],
            some("etc/zz"),
            ErrorKind::Truncated {
                what: "data",
                expected: 1000,
                got: valid.len() as u64 - data_start(ZZ),
            },
        ),
        case(
            "missing trailer",
            newc(&|e| {
                e.pop();
            }),
            off[TRAILER],
            None,
            ErrorKind::MissingTrailer,
        ),
        // Checksums.
        case(
            "crc check off by one",
            mutate(Format::Crc, &|e| e[HELLO].fields[CHECK] = 543),
            off[HELLO],
            hello.clone(),
            ErrorKind::ChecksumMismatch { expected: 543, actual: 542 },
        ),
        case(
            "crc data byte changed",
            {
                let mut archive = valid_crc.clone();
                // 'h' becomes 'j': the sum grows by 2.
                archive[data_start(HELLO) as usize] = b'j';
                archive
            },
            off[HELLO],
            hello,
            ErrorKind::ChecksumMismatch { expected: 542, actual: 544 },
        ),
        case(
            "crc check on an empty file",
            mutate(Format::Crc, &|e| {
                e[ZZ].set_data(b"");
                e[ZZ].fields[CHECK] = 1;
            }),
            off[ZZ],
            some("etc/zz"),
            ErrorKind::ChecksumMismatch { expected: 1, actual: 0 },
        ),
    ]
}

/// Whether the error is only found by reading a symlink's target (not by skipping it).
fn found_by_reading_target(kind: &ErrorKind) -> bool {
    matches!(kind, ErrorKind::SymlinkTargetHasNul { .. } | ErrorKind::SymlinkTargetNotUtf8 { .. })
}

/// How the test walks an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Reads every entry's data (symlink targets through `read_symlink_target`).
    ReadData,
    /// Leaves the data unread, so the reader skips it by reading.
    SkipByReading,
    /// Leaves the data unread over a seekable source, so the reader skips it by seeking.
    SkipBySeeking,
}

/// Reads `archive` until the first error in the given mode, and returns the error.
///
/// Also checks that an error that leaves the position unknown stops the reader.
fn first_error(archive: &[u8], mode: Mode) -> Option<Error> {
    if mode == Mode::SkipBySeeking {
        let reader = Reader::new_seekable(std::io::Cursor::new(archive)).unwrap();
        return walk(reader, false);
    }
    walk(Reader::new(archive), mode == Mode::ReadData)
}

fn walk<R: std::io::Read + std::fmt::Debug>(
    mut reader: Reader<R>,
    read_data: bool,
) -> Option<Error> {
    loop {
        let mut entry = match reader.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => return None,
            Err(err) => {
                let again = reader.next_entry().unwrap_err();
                assert!(matches!(again.kind(), ErrorKind::PreviousError), "{again}");
                return Some(err);
            }
        };
        if !read_data {
            continue;
        }
        if entry.header().file_type() == Some(FileType::Symlink) {
            if let Err(err) = entry.read_symlink_target() {
                return Some(err);
            }
        } else if let Err(err) = super::read_data(&mut entry) {
            let again = reader.next_entry().unwrap_err();
            assert!(matches!(again.kind(), ErrorKind::PreviousError), "{again}");
            return Some(err);
        }
    }
}

fn check(case: &Case) {
    for mode in [Mode::ReadData, Mode::SkipByReading, Mode::SkipBySeeking] {
        if mode != Mode::ReadData && found_by_reading_target(&case.kind) {
            assert!(first_error(&case.archive, mode).is_none(), "{} ({mode:?})", case.name);
            continue;
        }
        let Some(err) = first_error(&case.archive, mode) else {
            panic!("{} ({mode:?}): the archive was accepted", case.name);
        };
        let context = format!("{} ({mode:?}): {err}", case.name);
        assert_eq!(format!("{:?}", err.kind()), format!("{:?}", case.kind), "{context}");
        assert_eq!(err.offset(), case.offset, "{context}");
        assert_eq!(err.entry(), case.entry.as_deref(), "{context}");
    }
    // Whatever the defect, the fuzzing property holds.
    crate::cpio::check_roundtrip(&case.archive);
}

#[test]
fn base_archives_are_valid() {
    for format in [Format::Newc, Format::Crc] {
        let (archive, offsets) = encode(&base(format));
        assert_eq!(offsets, [0, 112, 228, 360, 492, 616]);
        for mode in [Mode::ReadData, Mode::SkipByReading, Mode::SkipBySeeking] {
            assert!(first_error(&archive, mode).is_none(), "{format:?} {mode:?}");
        }
    }
}

#[test]
fn malformed_archives() {
    let cases = cases();
    let mut names: Vec<_> = cases.iter().map(|case| case.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    for case in &cases {
        check(case);
    }
}
