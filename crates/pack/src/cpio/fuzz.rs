//! The fuzzing property: whatever the reader accepts, the writer writes back unchanged.

use std::io::Read;

use super::{FileType, Format, Header, Reader, Result, Writer};

/// An archive as read: its format and every entry with its data.
type Parsed = (Option<Format>, Vec<(Header, Vec<u8>)>);

/// Checks the reader and writer against each other on arbitrary input.
///
/// Parses all entries of `data`, reading all their data (symlinks through
/// [`Entry::read_symlink_target`](super::Entry::read_symlink_target)).
/// If that succeeds, writes the entries back with [`Writer`] and parses the result again: the
/// entries must be equal, and writing them once more must give the same bytes.
/// Rejecting the input is fine; panicking on it is a bug, and so is failing the round trip.
pub fn check_roundtrip(data: &[u8]) {
    let Ok((format, entries)) = parse(data) else {
        return;
    };
    // An accepted archive has at least the trailer, whose header sets the format.
    let format = format.expect("an accepted archive has a format");
    let written = write(format, &entries);
    let reparsed = parse(&written).expect("the reader rejects what the writer wrote");
    assert_eq!(reparsed, (Some(format), entries), "the entries changed in the round trip");
    assert_eq!(write(format, &reparsed.1), written, "writing is not deterministic");
}

fn parse(data: &[u8]) -> Result<Parsed> {
    let mut reader = Reader::new(data);
    let mut entries = Vec::new();
    while let Some(mut entry) = reader.next_entry()? {
        let header = entry.header().clone();
        let content = if header.file_type() == Some(FileType::Symlink) {
            entry.read_symlink_target()?.into_bytes()
        } else {
            // The data comes from `data`, so its size is bounded by the input's.
            let mut content = Vec::new();
            if let Err(err) = entry.read_to_end(&mut content) {
                return Err(
                    super::Error::from_io_error(err).expect("entry read errors carry a cpio error")
                );
            }
            content
        };
        entries.push((header, content));
    }
    Ok((reader.format(), entries))
}

fn write(format: Format, entries: &[(Header, Vec<u8>)]) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new(), format);
    for (header, content) in entries {
        writer
            .append(header, content.as_slice())
            .expect("the writer rejects what the reader accepted");
    }
    writer.finish().expect("writing to a Vec does not fail")
}
