//! System Use Sharing Protocol (SUSP 1.12) and Rock Ridge (RRIP 1.10) entries, and how a record's
//! entries are split between its System Use area and continuation areas.
//!
//! Every entry starts with a 2-byte signature, its length, and version 1 (SUSP 4.1).
//! The split follows libisofs (xorriso 1.5.4): PX, TF and PN always stay in the record; NM and
//! SL stay there when they fit without a CE entry; otherwise a 28-byte CE entry is reserved, as
//! much of the name as fits stays in the record (flag CONTINUE), and the rest of the name and the
//! whole SL go to the continuation area.

/// Length of a CE entry (SUSP 5.1).
pub(super) const CE_LEN: usize = 28;

/// Largest SUSP entry.
const ENTRY_MAX: usize = 255;

/// Largest continuation piece: one block (Linux rejects a CE area that crosses a block).
pub(super) const PIECE_MAX: usize = 2048;

/// Appends a both-byte-order 32-bit value (ECMA-119 7.3.3).
pub(super) fn both32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends a both-byte-order 16-bit value (ECMA-119 7.2.3).
pub(super) fn both16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
    out.extend_from_slice(&value.to_be_bytes());
}

/// Starts an entry of `len` bytes with signature `sig` (SUSP 4.1).
fn header(out: &mut Vec<u8>, sig: &[u8; 2], len: usize) {
    out.extend_from_slice(sig);
    // Every caller passes a length of at most ENTRY_MAX.
    out.push(len.min(ENTRY_MAX) as u8);
    out.push(1);
}

/// SP: the SUSP indicator of the root's `.` record (SUSP 5.3).
pub(super) fn sp(out: &mut Vec<u8>) {
    header(out, b"SP", 7);
    out.extend_from_slice(&[0xBE, 0xEF, 0]);
}

/// CE: where the continuation of this area is (SUSP 5.1).
pub(super) fn ce(out: &mut Vec<u8>, block: u32, offset: u32, len: u32) {
    header(out, b"CE", CE_LEN);
    both32(out, block);
    both32(out, offset);
    both32(out, len);
}

/// The RRIP 1.10 identifier, description and source of the ER entry (RRIP 1.10 4.3).
const ER_ID: &[u8] = b"RRIP_1991A";
const ER_DESCRIPTION: &[u8] =
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const ER_SOURCE: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER \
IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

/// ER: the extension reference announcing Rock Ridge (SUSP 5.5), 237 bytes.
pub(super) fn er() -> Vec<u8> {
    let len = 8 + ER_ID.len() + ER_DESCRIPTION.len() + ER_SOURCE.len();
    let mut out = Vec::with_capacity(len);
    header(&mut out, b"ER", len);
    // The three lengths are constants below 256.
    out.extend_from_slice(&[
        ER_ID.len() as u8,
        ER_DESCRIPTION.len() as u8,
        ER_SOURCE.len() as u8,
        1,
    ]);
    out.extend_from_slice(ER_ID);
    out.extend_from_slice(ER_DESCRIPTION);
    out.extend_from_slice(ER_SOURCE);
    out
}

/// PX: POSIX attributes in the 36-byte RRIP 1.10 form, without the serial number (RRIP 4.1.1).
pub(super) fn px(out: &mut Vec<u8>, mode: u32, nlink: u32, uid: u32, gid: u32) {
    header(out, b"PX", 36);
    both32(out, mode);
    both32(out, nlink);
    both32(out, uid);
    both32(out, gid);
}

/// TF: modify, access and attribute-change times, all `date` (RRIP 4.1.6, flags 0x0E).
pub(super) fn tf(out: &mut Vec<u8>, date: &[u8; 7]) {
    header(out, b"TF", 5 + 3 * 7);
    out.push(0x0E);
    for _ in 0..3 {
        out.extend_from_slice(date);
    }
}

/// PN: device numbers (RRIP 4.1.2).
pub(super) fn pn(out: &mut Vec<u8>, high: u32, low: u32) {
    header(out, b"PN", 20);
    both32(out, high);
    both32(out, low);
}

/// Appends an NM entry with `flags` and a piece of name of at most 250 bytes (RRIP 4.1.4).
fn nm(out: &mut Vec<u8>, flags: u8, piece: &[u8]) {
    header(out, b"NM", 5 + piece.len());
    out.push(flags);
    out.extend_from_slice(piece);
}

/// One SL component record: flags, length, content (RRIP 4.1.3.1).
fn sl_components(target: &str) -> Vec<Vec<u8>> {
    /// The largest component text in one SL entry: 255 - 5 (entry header and flags) - 2.
    const TEXT_MAX: usize = ENTRY_MAX - 5 - 2;
    let mut out = Vec::new();
    for (i, part) in target.split('/').enumerate() {
        match part.as_bytes() {
            b"" if i == 0 => out.push(vec![0x08, 0]),
            b"." => out.push(vec![0x02, 0]),
            b".." => out.push(vec![0x04, 0]),
            bytes => {
                let mut chunks = bytes.chunks(TEXT_MAX).peekable();
                if bytes.is_empty() {
                    out.push(vec![0, 0]);
                }
                while let Some(chunk) = chunks.next() {
                    let flags = u8::from(chunks.peek().is_some());
                    let mut component = vec![flags, chunk.len() as u8];
                    component.extend_from_slice(chunk);
                    out.push(component);
                }
            }
        }
    }
    out
}

/// Packs components into SL entries of at most 255 bytes; all but the last carry CONTINUE.
fn sl_entries(components: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut groups: Vec<Vec<&Vec<u8>>> = vec![Vec::new()];
    let mut len = 5;
    for component in components {
        if len + component.len() > ENTRY_MAX
            && let Some(last) = groups.last()
            && !last.is_empty()
        {
            groups.push(Vec::new());
            len = 5;
        }
        len += component.len();
        if let Some(last) = groups.last_mut() {
            last.push(component);
        }
    }
    let count = groups.len();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, group)| {
            let len = 5 + group.iter().map(|c| c.len()).sum::<usize>();
            let mut out = Vec::with_capacity(len);
            header(&mut out, b"SL", len);
            out.push(u8::from(i + 1 < count));
            for component in group {
                out.extend_from_slice(component);
            }
            out
        })
        .collect()
}

/// A record's System Use entries: those in the record (without the CE entry) and those in its
/// continuation area, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Sua {
    /// The bytes in the directory record, CE excluded.
    pub(super) inline: Vec<u8>,
    /// Entries that go to the continuation area (each at most 255 bytes).
    pub(super) continued: Vec<Vec<u8>>,
}

/// Splits a record's entries: `fixed` (PX, TF, PN) always inline, then NM for `name` (none for
/// `.` and `..`) and SL for `target`, within `space` bytes of System Use area.
pub(super) fn split(fixed: Vec<u8>, name: Option<&str>, target: Option<&str>, space: usize) -> Sua {
    let name = name.map(str::as_bytes).unwrap_or_default();
    let sl = target.map(|t| sl_entries(&sl_components(t))).unwrap_or_default();
    let nm_len = if name.is_empty() { 0 } else { 5 + name.len() };
    let sl_len: usize = sl.iter().map(Vec::len).sum();
    // First try: everything inline, SL as a single entry.
    if fixed.len() + nm_len + sl_len <= space && sl.len() <= 1 && nm_len <= ENTRY_MAX {
        let mut inline = fixed;
        if !name.is_empty() {
            nm(&mut inline, 0, name);
        }
        for entry in sl {
            inline.extend_from_slice(&entry);
        }
        return Sua { inline, continued: Vec::new() };
    }
    // Then: reserve a CE entry; keep what fits of the name inline.
    let mut inline = fixed;
    let mut continued = Vec::new();
    let used = inline.len() + CE_LEN;
    let mut rest = name;
    if !name.is_empty() {
        if used + nm_len <= space && nm_len <= ENTRY_MAX {
            nm(&mut inline, 0, name);
            rest = &[];
        } else {
            let room = space.saturating_sub(used + 5).min(ENTRY_MAX - 5);
            if room > 0 {
                let (head, tail) = name.split_at(room.min(name.len()));
                nm(&mut inline, 1, head);
                rest = tail;
            }
        }
        let mut pieces = rest.chunks(ENTRY_MAX - 5).peekable();
        while let Some(piece) = pieces.next() {
            let mut entry = Vec::new();
            nm(&mut entry, u8::from(pieces.peek().is_some()), piece);
            continued.push(entry);
        }
    }
    let inline_room = space.saturating_sub(inline.len() + CE_LEN);
    if continued.is_empty() && sl.len() == 1 && sl_len <= inline_room {
        for entry in sl {
            inline.extend_from_slice(&entry);
        }
    } else {
        continued.extend(sl);
    }
    Sua { inline, continued }
}

/// Groups continuation entries into pieces of at most one block; every piece but the last keeps
/// room for the CE entry that chains to the next.
pub(super) fn pieces(continued: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for (i, entry) in continued.iter().enumerate() {
        let more_after = i + 1 < continued.len();
        let reserve = if more_after { CE_LEN } else { 0 };
        if !current.is_empty() && current.len() + entry.len() + reserve > PIECE_MAX {
            out.push(std::mem::take(&mut current));
        }
        current.extend_from_slice(entry);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn er_is_the_237_bytes_xorriso_writes() {
        // sample.iso block 19 starts with this entry: "ER" ed 01 0a 54 87 01 "RRIP_1991A...".
        let er = er();
        assert_eq!(er.len(), 237);
        assert_eq!(&er[..8], &[b'E', b'R', 0xed, 1, 0x0a, 0x54, 0x87, 1]);
    }

    #[test]
    fn sl_matches_xorriso_for_short_targets() {
        // sample.iso, record of etc/hello-abs: SL 17 01 00 | 08 00 | 00 03 "etc" | 00 09 "hello.txt".
        let entries = sl_entries(&sl_components("/etc/hello.txt"));
        let mut want = b"SL\x17\x01\x00\x08\x00\x00\x03etc\x00\x09".to_vec();
        want.extend_from_slice(b"hello.txt");
        assert_eq!(entries, vec![want]);
        // etc/dangling: 00 04 "does" 00 03 "not" 00 05 "exist".
        let entries = sl_entries(&sl_components("does/not/exist"));
        assert_eq!(entries[0].len(), 23);
    }

    #[test]
    fn long_targets_split_into_continued_entries() {
        // sample.iso block 37: the 309-byte target of etc/long-symlink is an SL of 159 bytes with
        // CONTINUE (root, 150 x) and one of 165 bytes (150 y, "target").
        let target = format!("/{}/{}/target", "x".repeat(150), "y".repeat(150));
        let entries = sl_entries(&sl_components(&target));
        let lens: Vec<(usize, u8)> = entries.iter().map(|e| (e.len(), e[4])).collect();
        assert_eq!(lens, [(159, 1), (165, 0)]);
        // A component longer than one entry is split with the component CONTINUE flag.
        let entries = sl_entries(&sl_components(&"z".repeat(600)));
        assert!(entries.iter().all(|e| e.len() <= 255));
        assert_eq!(entries.len(), 3);
    }
}
