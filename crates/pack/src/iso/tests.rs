//! Unit tests of the ISO writer; the comparisons with independent readers (isoinfo, xorriso,
//! bsdtar, Linux) are in `crates/cli/tests/iso.rs`.

use std::io::{Cursor, Read};

use super::*;
use crate::cpio::{Format, Header, Reader, Writer};

/// Builds the image of an in-memory cpio.
fn build(cpio: &[u8], options: &Options) -> Result<Vec<u8>> {
    let layout = plan(Reader::new(cpio), options)?;
    write(&layout, &mut Cursor::new(cpio), Vec::new())
}

/// The options of the upstream command in the vectors' SOURCES.md.
fn upstream_options() -> Options {
    Options {
        epoch: 1_650_000_000,
        all_times_epoch: true,
        owner_root: true,
        preparer_id: "XORRISO".to_owned(),
        directory_nlink_one: true,
        pad_blocks: 150,
        allow_long_names: true,
        ..Options::default()
    }
}

/// Every entry of a cpio with its data.
fn entries(cpio: &[u8]) -> Vec<(Header, Vec<u8>)> {
    let mut reader = Reader::new(cpio);
    let mut out = Vec::new();
    while let Some(mut entry) = reader.next_entry().unwrap() {
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((header, data));
    }
    out
}

/// A newc archive of `entries`, in the given order.
fn archive(entries: &[(Header, Vec<u8>)]) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new(), Format::Newc);
    for (header, data) in entries {
        writer.append(header, &data[..]).unwrap();
    }
    writer.finish().unwrap()
}

fn header(name: &str, mode: u32, size: usize) -> Header {
    Header {
        name: name.to_owned(),
        mode,
        nlink: 1,
        mtime: 1_700_000_000,
        file_size: u32::try_from(size).unwrap(),
        ..Header::default()
    }
}

/// Reads a both-byte-order u32 at `at`, checking that both halves agree.
fn both32(image: &[u8], at: usize) -> u32 {
    let le = u32::from_le_bytes(image[at..at + 4].try_into().unwrap());
    let be = u32::from_be_bytes(image[at + 4..at + 8].try_into().unwrap());
    assert_eq!(le, be, "both-byte-order field at {at}");
    le
}

#[test]
fn sample_equals_xorriso_except_the_big_device_number() {
    let Some(cpio) = secretvm_testkit::vector("packing/sample.cpio") else { return };
    let Some(xorriso) = secretvm_testkit::vector("packing/sample.iso") else { return };
    let ours = build(&cpio, &upstream_options()).unwrap();
    assert_eq!(ours.len(), xorriso.len());
    let diffs: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != xorriso[i]).collect();
    // The only difference is the PN entry of dev/bigdev (259:65537): xorriso packs glibc's dev_t
    // (high 0, low 0x10010301), which Linux reads as 259:1; we write high 259, low 65537, which
    // Linux reads as 259:65537 (fs/isofs/rock.c: MKDEV(high, low) when high != 0).
    let Some(&first) = diffs.first() else { return };
    let pn = ours[..first].windows(4).rposition(|w| w == b"PN\x14\x01").unwrap();
    assert!(diffs.iter().all(|&i| (pn..pn + 20).contains(&i)), "differences at {diffs:?}");
    assert_eq!((both32(&xorriso, pn + 4), both32(&xorriso, pn + 12)), (0, 0x1001_0301));
    assert_eq!((both32(&ours, pn + 4), both32(&ours, pn + 12)), (259, 65537));
}

#[test]
fn entry_order_and_repetition_do_not_change_the_bytes() {
    let Some(cpio) = secretvm_testkit::vector("packing/sample.cpio") else { return };
    let options = Options { epoch: 1_750_000_000, allow_long_names: true, ..Options::default() };
    let first = build(&cpio, &options).unwrap();
    assert_eq!(build(&cpio, &options).unwrap(), first);
    let checked = check_iso(&cpio).expect("sample.cpio is accepted");
    assert_eq!(checked.paths.len(), 365);
    let mut all = entries(&cpio);
    all.reverse();
    let reversed = archive(&all);
    assert_ne!(reversed, cpio);
    assert_eq!(build(&reversed, &options).unwrap(), first);
    // Interleaved: odd positions first, then even ones.
    let (odd, even): (Vec<_>, Vec<_>) = all.into_iter().enumerate().partition(|(i, _)| i % 2 == 1);
    let shuffled: Vec<_> = odd.into_iter().chain(even).map(|(_, e)| e).collect();
    assert_eq!(build(&archive(&shuffled), &options).unwrap(), first);
}

#[test]
fn options_change_what_they_should() {
    let Some(cpio) = secretvm_testkit::vector("packing/sample.cpio") else { return };
    let base = Options { epoch: 1_650_000_000, allow_long_names: true, ..Options::default() };
    let image = build(&cpio, &base).unwrap();
    // The volume dates are the epoch (ECMA-119 8.4.26: creation at 813, modification at 830).
    assert_eq!(&image[16 * 2048 + 813..16 * 2048 + 829], b"2022041505200000");
    assert_eq!(&image[16 * 2048 + 40..16 * 2048 + 48], b"ISOIMAGE");
    let owners = build(&cpio, &Options { owner_root: true, ..base.clone() }).unwrap();
    assert_ne!(owners, image);
    assert_eq!(owners.len(), image.len());
    // Every mtime in the sample is after 1650000000 but hello.txt's (1600000000).
    let later = Options { epoch: 1_800_000_000, all_times_epoch: false, ..base.clone() };
    let later_all = Options { all_times_epoch: true, ..later.clone() };
    assert_ne!(build(&cpio, &later).unwrap(), build(&cpio, &later_all).unwrap());
    let too_long = build(&cpio, &Options { allow_long_names: false, ..base.clone() });
    assert!(
        matches!(too_long, Err(Error::NameTooLong { ref path, name_len: 255, max: 253 }) if path.starts_with("etc/nnn")),
        "{too_long:?}"
    );
}

#[test]
fn hostile_inputs_give_clear_errors() {
    let dir = |name: &str| (header(name, 0o040755, 0), Vec::new());
    let file = |name: &str, data: &[u8]| (header(name, 0o100644, data.len()), data.to_vec());
    let options = Options { epoch: 1_800_000_000, ..Options::default() };

    let orphan = archive(&[dir("."), file("a/b", b"x")]);
    assert!(matches!(build(&orphan, &options), Err(Error::MissingParent { .. })));

    let under_file = archive(&[dir("."), file("a", b"x"), file("a/b", b"y")]);
    assert!(matches!(build(&under_file, &options), Err(Error::ParentNotDirectory { .. })));

    let mut dev = header("d", 0o020600, 0);
    dev.rdev_major = 0;
    dev.rdev_minor = 300;
    let bad_dev = archive(&[dir("."), (dev, Vec::new())]);
    assert!(matches!(build(&bad_dev, &options), Err(Error::DeviceNumber { minor: 300, .. })));

    let mut a = header("a", 0o100644, 3);
    a.nlink = 2;
    a.ino = 7;
    let mut b = header("b", 0o100644, 4);
    b.nlink = 2;
    b.ino = 7;
    let two_data = archive(&[dir("."), (a, b"abc".to_vec()), (b, b"abcd".to_vec())]);
    assert!(matches!(build(&two_data, &options), Err(Error::HardLinkData { .. })));

    let bad_volume = Options { volume_id: "lower".to_owned(), ..options.clone() };
    assert!(matches!(build(&archive(&[dir(".")]), &bad_volume), Err(Error::BadIdentifier { .. })));

    // Data cut short in the source: the cpio given to `write` is not the one planned.
    let good = archive(&[dir("."), file("f", b"hello")]);
    let layout = plan(Reader::new(&good[..]), &options).unwrap();
    let short = &good[..good.len() / 2];
    let err = write(&layout, &mut Cursor::new(short), Vec::new()).unwrap_err();
    assert!(matches!(err, Error::ReadData { ref path, .. } if path == "f"), "{err:?}");
}

#[test]
fn odd_but_valid_inputs_are_laid_out() {
    let options = Options { epoch: 1_800_000_000, ..Options::default() };
    let mut entries = vec![(header("d", 0o040755, 0), Vec::new())];
    // Thousands of entries in one directory whose ISO names all collide.
    for i in 0..3000 {
        entries.push((header(&format!("d/{}-{i:05}", "same".repeat(10)), 0o100644, 0), Vec::new()));
    }
    // A 4 KiB symlink target (needs several SL entries and a chained continuation area), a
    // 253-byte name and no root entry at all.
    let target = "t/".repeat(2047) + "tt";
    entries.push((header("link", 0o120777, target.len()), target.into_bytes()));
    entries.push((header(&"n".repeat(253), 0o100644, 2), b"hi".to_vec()));
    let cpio = archive(&entries);
    let layout = plan(Reader::new(&cpio[..]), &options).unwrap();
    assert_eq!(layout.entry_count(), 3004);
    assert_eq!(layout.data_len(), 2);
    let image = write(&layout, &mut Cursor::new(&cpio), Vec::new()).unwrap();
    assert_eq!(image.len() as u64, layout.image_len());
    assert_eq!(check_iso(&cpio).expect("accepted").paths.len(), entries.len());
    // The volume space size in the PVD is the image size.
    assert_eq!(u64::from(both32(&image, 16 * 2048 + 80)) * BLOCK_SIZE, layout.image_len());
}

/// A cpio of one file of `u32::MAX` zero bytes, generated while it is read.
struct HugeCpio {
    prefix: Vec<u8>,
    data_len: u64,
    suffix: Vec<u8>,
    position: u64,
}

impl HugeCpio {
    fn new() -> HugeCpio {
        let small = archive(&[
            (header(".", 0o040755, 0), Vec::new()),
            (header("big", 0o100644, 0), Vec::new()),
        ]);
        let trailer = small.windows(6).rposition(|w| w == b"070701").unwrap();
        let mut prefix = small[..trailer].to_vec();
        // The second header's `filesize` field (newc: magic, then 13 fields of 8 hex digits).
        let big = prefix.windows(6).rposition(|w| w == b"070701").unwrap();
        prefix[big + 54..big + 62].copy_from_slice(b"FFFFFFFF");
        // u32::MAX bytes of data, then 1 byte of padding to a multiple of 4.
        HugeCpio {
            prefix,
            data_len: u64::from(u32::MAX) + 1,
            suffix: small[trailer..].to_vec(),
            position: 0,
        }
    }

    fn len(&self) -> u64 {
        self.prefix.len() as u64 + self.data_len + self.suffix.len() as u64
    }
}

impl Read for HugeCpio {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let prefix = self.prefix.len() as u64;
        let data_end = prefix + self.data_len;
        let n = if self.position < prefix {
            let from = &self.prefix[self.position as usize..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            n
        } else if self.position < data_end {
            let n = usize::try_from(data_end - self.position).unwrap_or(usize::MAX).min(buf.len());
            buf[..n].fill(0);
            n
        } else {
            let from = self.suffix.get((self.position - data_end) as usize..).unwrap_or(&[]);
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            n
        };
        self.position += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for HugeCpio {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        let std::io::SeekFrom::Start(to) = pos else { unimplemented!("only SeekFrom::Start") };
        assert!(to <= self.len());
        self.position = to;
        Ok(to)
    }
}

/// Keeps the first `keep` bytes written and counts the rest.
struct Head {
    keep: usize,
    head: Vec<u8>,
    total: u64,
}

impl std::io::Write for Head {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.keep.saturating_sub(self.head.len()).min(buf.len());
        self.head.extend_from_slice(&buf[..room]);
        self.total += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn files_of_4_gib_use_two_extents() {
    let options = Options { epoch: 1_800_000_000, ..Options::default() };
    let mut cpio = HugeCpio::new();
    let layout = plan(Reader::new(&mut cpio), &options).unwrap();
    let mut cpio = HugeCpio::new();
    let sink =
        write(&layout, &mut cpio, Head { keep: 20 * 2048, head: Vec::new(), total: 0 }).unwrap();
    assert_eq!(sink.total, layout.image_len());
    // ECMA-119 6.5.1 and 9.1.6: every record of the file but the last has the multi-extent flag
    // (0x80); all have the same name; the extents follow each other. libisofs cuts sections at
    // 0xFFFFF800 bytes, the largest block multiple below 4 GiB.
    let root = &sink.head[18 * 2048..19 * 2048];
    let mut at = 0;
    let mut records = Vec::new();
    while root[at] != 0 {
        let len = usize::from(root[at]);
        let id_len = usize::from(root[at + 32]);
        records.push((
            root[at + 33..at + 33 + id_len].to_vec(),
            both32(root, at + 2),
            both32(root, at + 10),
            root[at + 25],
        ));
        at += len;
    }
    assert_eq!(records.len(), 4, "{records:?}");
    let (first, second) = (&records[2], &records[3]);
    assert_eq!((&first.0[..], first.2, first.3), (&b"BIG.;1"[..], 0xFFFF_F800, 0x80));
    assert_eq!((&second.0[..], second.2, second.3), (&b"BIG.;1"[..], u32::MAX - 0xFFFF_F800, 0));
    assert_eq!(second.1, first.1 + 0xFFFF_F800 / 2048);
}
