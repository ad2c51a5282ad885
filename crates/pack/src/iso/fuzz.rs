//! The fuzzing property: whatever cpio the planner accepts gives a structurally valid image.

use std::io::Cursor;

use super::{BLOCK_SIZE, Options, plan, write};
use crate::cpio::Reader;

/// Builds the image of an arbitrary cpio and checks its structure.
///
/// Rejecting the input is fine; panicking is a bug, and so is an accepted input whose image
/// fails to write or breaks one of these rules: the size is the planned one and a block multiple;
/// the volume descriptor and terminator are in place with consistent both-byte-order fields;
/// walking the directories from the root reaches every entry once, every record stays inside
/// its block and every SUSP entry (following CE) inside its area; a second write gives the same
/// bytes.
///
/// Returns the image and the cpio's entry paths when the input was accepted, so a harness can
/// also hand the image to an independent reader (the fuzz target runs `isoinfo`).
pub fn check_iso(data: &[u8]) -> Option<CheckedIso> {
    let options = Options { epoch: 1_700_000_000, allow_long_names: true, ..Options::default() };
    let layout = plan(Reader::new(data), &options).ok()?;
    let image = write(&layout, &mut Cursor::new(data), Vec::new())
        .expect("an accepted cpio must give an image");
    assert_eq!(image.len() as u64, layout.image_len());
    assert_eq!(image.len() as u64 % BLOCK_SIZE, 0);
    let pvd = block(&image, 16);
    assert_eq!(&pvd[..7], b"\x01CD001\x01");
    assert_eq!(u64::from(both32(pvd, 80)) * BLOCK_SIZE, image.len() as u64);
    assert_eq!(&block(&image, 17)[..7], b"\xffCD001\x01");
    let root_block = both32(pvd, 156 + 2);
    let root_len = both32(pvd, 156 + 10);
    let mut seen = 1usize;
    let mut stack = vec![(root_block, root_len, 0usize)];
    while let Some((dir_block, len, depth)) = stack.pop() {
        assert!(depth <= layout.entry_count(), "directory loop");
        let mut offset = 0u64;
        let mut index = 0usize;
        while offset < u64::from(len) {
            let at = u64::from(dir_block) * BLOCK_SIZE + offset;
            let record_len = u64::from(image[usize::try_from(at).unwrap()]);
            if record_len == 0 {
                offset = (offset / BLOCK_SIZE + 1) * BLOCK_SIZE;
                continue;
            }
            assert!(record_len >= 34 && record_len % 2 == 0, "bad record length at {at}");
            assert!(offset % BLOCK_SIZE + record_len <= BLOCK_SIZE, "record crosses a block");
            let start = usize::try_from(at).unwrap();
            let record = &image[start..start + usize::try_from(record_len).unwrap()];
            let extent = both32(record, 2);
            let size = both32(record, 10);
            let flags = record[25];
            let id_len = usize::from(record[32]);
            let sua_start = 33 + id_len + usize::from(id_len % 2 == 0);
            assert!(sua_start <= record.len());
            check_susp(&image, &record[sua_start..], 0);
            assert!(
                u64::from(extent) * BLOCK_SIZE + u64::from(size) <= image.len() as u64,
                "extent outside the image"
            );
            if index >= 2 {
                if flags & 0x80 == 0 {
                    seen += 1;
                }
                if flags & 0x02 != 0 {
                    stack.push((extent, size, depth + 1));
                }
            }
            index += 1;
            offset += record_len;
        }
    }
    assert_eq!(seen, layout.entry_count(), "entries reached from the root");
    let again = write(&layout, &mut Cursor::new(data), Vec::new()).expect("second write");
    assert!(again == image, "writing is not deterministic");
    let mut paths = Vec::new();
    let mut reader = Reader::new(data);
    while let Some(entry) = reader.next_entry().expect("the planner accepted this archive") {
        paths.push(entry.header().name.clone());
    }
    Some(CheckedIso { image, paths })
}

/// An image [`check_iso`] built and checked, with what it must contain.
#[derive(Debug)]
pub struct CheckedIso {
    /// The image bytes.
    pub image: Vec<u8>,
    /// The path of every cpio entry, in archive order (`.` for the root when the archive has
    /// one).
    pub paths: Vec<String>,
}

/// Checks a System Use area: every entry fits, and CE points to one block inside the image.
fn check_susp(image: &[u8], area: &[u8], depth: usize) {
    assert!(depth < 64, "CE chain too long");
    let mut at = 0;
    while at + 4 <= area.len() {
        let len = usize::from(area[at + 2]);
        if len == 0 {
            // Padding.
            assert!(area[at..].iter().all(|&b| b == 0), "garbage after the SUSP entries");
            return;
        }
        assert!(len >= 4 && at + len <= area.len(), "SUSP entry overflows its area");
        let entry = &area[at..at + len];
        if &entry[..2] == b"CE" {
            assert_eq!(len, 28);
            let (ce_block, offset, ce_len) =
                (both32(entry, 4), both32(entry, 12), both32(entry, 20));
            assert!(u64::from(offset) + u64::from(ce_len) <= BLOCK_SIZE, "CE crosses a block");
            let start =
                usize::try_from(u64::from(ce_block) * BLOCK_SIZE + u64::from(offset)).unwrap();
            let end = start + usize::try_from(ce_len).unwrap();
            assert!(end <= image.len(), "CE outside the image");
            check_susp(image, &image[start..end], depth + 1);
        }
        at += len;
    }
    assert!(area[at..].iter().all(|&b| b == 0), "truncated SUSP entry");
}

/// The 2048 bytes of block `n`.
fn block(image: &[u8], n: usize) -> &[u8] {
    &image[n * 2048..(n + 1) * 2048]
}

/// A both-byte-order u32 at `at`; the two halves must agree.
fn both32(bytes: &[u8], at: usize) -> u32 {
    let le = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let be = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().unwrap());
    assert_eq!(le, be, "both-byte-order field disagrees");
    le
}
