//! The second pass: emit the planned image sequentially, copying file data from the cpio.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::layout::{Kind, Layout, Node, Record, SECTION_MAX};
use super::rr::{self, CE_LEN};
use super::time::{UNSPECIFIED_VOLUME_DATE, volume_date};
use super::{BLOCK_SIZE, Error, Result};

/// The block size as a `usize`, for buffers.
const BLOCK: usize = BLOCK_SIZE as usize;

/// Writes the image planned in `layout` into `out`, taking file data from `cpio`, the same
/// archive [`plan`](super::plan) read (any position; it is sought to each file's data).
///
/// Writes exactly [`Layout::image_len`] bytes, strictly sequentially, and returns `out`.
pub fn write<S: Read + Seek, W: Write>(layout: &Layout, cpio: &mut S, out: W) -> Result<W> {
    write_with_progress(layout, cpio, out, &mut |_| {})
}

/// Files up to this size are copied through a buffer rather than by `io::copy`.
const SMALL_FILE: u64 = 64 * 1024;

/// [`write()`], calling `progress` with the number of bytes written so far after each directory
/// and each file (for a progress bar; [`Layout::image_len`] is the total).
pub fn write_with_progress<S: Read + Seek, W: Write>(
    layout: &Layout,
    cpio: &mut S,
    mut out: W,
    progress: &mut dyn FnMut(u64),
) -> Result<W> {
    let mut sink =
        Sink { out: &mut out, offset: 0, staged: Vec::with_capacity(STAGE + SMALL_FILE as usize) };
    sink.zeros(16 * BLOCK)?;
    sink.put(&primary_volume_descriptor(layout)?)?;
    sink.put(&terminator())?;
    for &d in &layout.dirs {
        let (extent, ce_area) = directory(layout, d);
        sink.put(&extent)?;
        sink.put(&ce_area)?;
        progress(sink.offset);
    }
    for big_endian in [false, true] {
        sink.put(&path_table(layout, big_endian))?;
    }
    sink.zeros(BLOCK)?;
    // Small files are read straight into the sink's staging buffer, which reaches the output in
    // large writes (one copy, no flush per file); larger ones go through `io::copy`, which
    // Linux turns into `copy_file_range` between files.
    for &slot in &layout.data_order {
        let Some(data) = layout.data.get(slot) else { continue };
        let read_error = |source| Error::ReadData {
            path: data.path.clone(),
            offset: data.cpio_offset,
            len: data.len,
            source,
        };
        cpio.seek(SeekFrom::Start(data.cpio_offset)).map_err(read_error)?;
        if data.len <= SMALL_FILE {
            let filled = sink.stage_from(&mut *cpio, data.len).map_err(read_error)?;
            if filled < data.len {
                return Err(read_error(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the cpio ends after {filled} bytes of this file"),
                )));
            }
            let tail = (BLOCK_SIZE - data.len % BLOCK_SIZE) % BLOCK_SIZE;
            sink.zeros(tail as usize)?;
            sink.maybe_flush()?;
            progress(sink.offset);
            continue;
        }
        sink.flush_stage()?;
        let copied = match io::copy(&mut (&mut *cpio).take(data.len), sink.out) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WriteZero => {
                return Err(Error::Write { offset: sink.offset, source: err });
            }
            Err(err) => return Err(read_error(err)),
        };
        sink.offset += copied;
        if copied != data.len {
            return Err(read_error(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the cpio ends after {copied} bytes of this file"),
            )));
        }
        let tail = (BLOCK_SIZE - data.len % BLOCK_SIZE) % BLOCK_SIZE;
        // A tail is below one block.
        sink.zeros(tail as usize)?;
        progress(sink.offset);
    }
    for _ in 0..layout.options.pad_blocks {
        sink.zeros(BLOCK)?;
    }
    sink.flush_stage()?;
    progress(sink.offset);
    if sink.offset != layout.image_len() {
        return Err(Error::Write {
            offset: sink.offset,
            source: io::Error::other(format!(
                "wrote {} bytes but planned {}",
                sink.offset,
                layout.image_len()
            )),
        });
    }
    Ok(out)
}

/// The output, how many bytes went into it, and the bytes staged for it: everything but the
/// data of large files is gathered in `staged` and written in chunks of [`STAGE`] bytes or more,
/// which a `BufWriter` passes through without copying them again.
struct Sink<'a, W> {
    out: &'a mut W,
    /// Bytes written or staged so far.
    offset: u64,
    staged: Vec<u8>,
}

/// The size from which staged bytes are written out.
const STAGE: usize = 2 << 20;

impl<W: Write> Sink<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.staged.extend_from_slice(bytes);
        self.offset += bytes.len() as u64;
        self.maybe_flush()
    }

    /// Reads up to `len` bytes from `src` into the staging buffer; returns how many there were.
    fn stage_from<R: Read>(&mut self, src: R, len: u64) -> io::Result<u64> {
        // `len` is at most SMALL_FILE.
        self.staged.reserve(len as usize);
        let n = src.take(len).read_to_end(&mut self.staged)? as u64;
        self.offset += n;
        Ok(n)
    }

    /// Writes the staged bytes out once there are [`STAGE`] of them.
    fn maybe_flush(&mut self) -> Result<()> {
        if self.staged.len() >= STAGE { self.flush_stage() } else { Ok(()) }
    }

    /// Writes the staged bytes to the output.
    fn flush_stage(&mut self) -> Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let start = self.offset - self.staged.len() as u64;
        self.out
            .write_all(&self.staged)
            .map_err(|source| Error::Write { offset: start, source })?;
        self.staged.clear();
        Ok(())
    }

    fn zeros(&mut self, len: usize) -> Result<()> {
        const ZEROS: [u8; BLOCK] = [0; BLOCK];
        let mut left = len;
        while left > 0 {
            let n = left.min(BLOCK);
            self.put(&ZEROS[..n])?;
            left -= n;
        }
        Ok(())
    }
}

/// Copies `text` into `field`, padded with spaces (an a- or d-character field).
fn text_field(field: &mut [u8], text: &str) {
    field.fill(b' ');
    for (dst, src) in field.iter_mut().zip(text.bytes()) {
        *dst = src;
    }
}

/// The primary volume descriptor (ECMA-119 8.4).
fn primary_volume_descriptor(layout: &Layout) -> Result<Vec<u8>> {
    let options = &layout.options;
    let mut pvd = Vec::with_capacity(BLOCK);
    pvd.push(1);
    pvd.extend_from_slice(b"CD001");
    pvd.extend_from_slice(&[1, 0]);
    let mut system_and_volume = [b' '; 64];
    text_field(&mut system_and_volume[32..], &options.volume_id);
    pvd.extend_from_slice(&system_and_volume);
    pvd.extend_from_slice(&[0; 8]);
    rr::both32(&mut pvd, layout.total_blocks);
    pvd.extend_from_slice(&[0; 32]);
    rr::both16(&mut pvd, 1);
    rr::both16(&mut pvd, 1);
    rr::both16(&mut pvd, BLOCK as u16);
    rr::both32(&mut pvd, layout.path_table_len);
    pvd.extend_from_slice(&layout.l_path_block.to_le_bytes());
    pvd.extend_from_slice(&[0; 4]);
    pvd.extend_from_slice(&layout.m_path_block.to_be_bytes());
    pvd.extend_from_slice(&[0; 4]);
    let root = &layout.nodes[0];
    let (root_block, root_len) = dir_extent(root);
    push_record_header(&mut pvd, 34, root_block, root_len, &root.date, 0x02, &[0]);
    let mut ids = [b' '; 128 * 4 + 37 * 3];
    text_field(&mut ids[256..384], &options.preparer_id);
    pvd.extend_from_slice(&ids);
    let date = volume_date("the epoch", options.epoch)?;
    pvd.extend_from_slice(&date);
    pvd.extend_from_slice(&date);
    pvd.extend_from_slice(&UNSPECIFIED_VOLUME_DATE);
    pvd.extend_from_slice(&UNSPECIFIED_VOLUME_DATE);
    pvd.extend_from_slice(&[1, 0]);
    pvd.extend_from_slice(&[b' '; 512]);
    pvd.resize(BLOCK, 0);
    Ok(pvd)
}

/// The volume descriptor set terminator (ECMA-119 8.3).
fn terminator() -> Vec<u8> {
    let mut block = vec![0u8; BLOCK];
    block[0] = 255;
    block[1..6].copy_from_slice(b"CD001");
    block[6] = 1;
    block
}

/// A directory's block and length.
fn dir_extent(node: &Node) -> (u32, u32) {
    match &node.kind {
        Kind::Dir(dir) => (dir.block, dir.len),
        _ => (0, 0),
    }
}

/// Appends the fixed part and identifier of a directory record (ECMA-119 9.1), with a pad byte
/// after an identifier of even length.
fn push_record_header(
    out: &mut Vec<u8>,
    len: u8,
    block: u32,
    data_len: u32,
    date: &[u8; 7],
    flags: u8,
    id: &[u8],
) {
    out.push(len);
    out.push(0);
    rr::both32(out, block);
    rr::both32(out, data_len);
    out.extend_from_slice(date);
    out.push(flags);
    out.extend_from_slice(&[0, 0]);
    rr::both16(out, 1);
    // Identifiers are at most 33 bytes (31 and ";1").
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    if id.len().is_multiple_of(2) {
        out.push(0);
    }
}

/// A directory's extent and its continuation area.
fn directory(layout: &Layout, d: usize) -> (Vec<u8>, Vec<u8>) {
    let node = &layout.nodes[d];
    let Kind::Dir(dir) = &node.kind else { return (Vec::new(), Vec::new()) };
    let mut extent = vec![0u8; dir.len as usize];
    let mut ce_area = vec![0u8; dir.ce_blocks as usize * BLOCK];
    let mut emit = |record: &Record, block: u32, len: u32, date: &[u8; 7], flags: u8, id: &[u8]| {
        let mut bytes = Vec::with_capacity(usize::from(record.len));
        push_record_header(&mut bytes, record.len, block, len, date, flags, id);
        bytes.extend_from_slice(&record.sua);
        let locate = |i: usize| -> Option<(u32, u32, u32)> {
            let (offset, piece) = record.pieces.get(i)?;
            let chain = if i + 1 < record.pieces.len() { CE_LEN } else { 0 };
            let block = dir.ce_block.saturating_add(offset / BLOCK_SIZE as u32);
            Some((block, offset % BLOCK_SIZE as u32, (piece.len() + chain) as u32))
        };
        if let Some((block, offset, len)) = locate(0) {
            rr::ce(&mut bytes, block, offset, len);
        }
        bytes.resize(usize::from(record.len), 0);
        copy_into(&mut extent, record.offset as usize, &bytes);
        for (i, (offset, piece)) in record.pieces.iter().enumerate() {
            let mut bytes = piece.clone();
            if let Some((block, next_offset, len)) = locate(i + 1) {
                rr::ce(&mut bytes, block, next_offset, len);
            }
            copy_into(&mut ce_area, *offset as usize, &bytes);
        }
    };
    emit(&dir.dot, dir.block, dir.len, &node.date, 0x02, &[0]);
    let parent = &layout.nodes[node.parent];
    let (parent_block, parent_len) = dir_extent(parent);
    emit(&dir.dotdot, parent_block, parent_len, &parent.date, 0x02, &[1]);
    for &c in &dir.children {
        let child = &layout.nodes[c];
        match &child.kind {
            Kind::Dir(sub) => {
                if let Some(record) = child.records.first() {
                    emit(record, sub.block, sub.len, &child.date, 0x02, &child.id);
                }
            }
            kind => {
                let mut id = child.id.clone();
                id.extend_from_slice(b";1");
                let (mut block, mut left) = match kind {
                    Kind::File(Some(slot)) => {
                        layout.data.get(*slot).map_or((layout.empty_block, 0), |d| (d.block, d.len))
                    }
                    _ => (layout.empty_block, 0),
                };
                let count = child.records.len();
                for (i, record) in child.records.iter().enumerate() {
                    let len = left.min(SECTION_MAX);
                    let flags = if i + 1 < count { 0x80 } else { 0 };
                    // `len` is at most SECTION_MAX, below 2^32.
                    emit(record, block, len as u32, &child.date, flags, &id);
                    left -= len;
                    block = block.saturating_add((SECTION_MAX / BLOCK_SIZE) as u32);
                }
            }
        }
    }
    (extent, ce_area)
}

/// Copies `bytes` into `buf` at `offset`, ignoring what would fall outside (the layout keeps
/// everything inside).
fn copy_into(buf: &mut [u8], offset: usize, bytes: &[u8]) {
    if let Some(dst) = offset.checked_add(bytes.len()).and_then(|end| buf.get_mut(offset..end)) {
        dst.copy_from_slice(bytes);
    }
}

/// One path table, little-endian (L) or big-endian (M), padded to whole blocks (ECMA-119 9.4).
fn path_table(layout: &Layout, big_endian: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(layout.path_table_len as usize);
    for &d in &layout.path_order {
        let node = &layout.nodes[d];
        let Kind::Dir(dir) = &node.kind else { continue };
        let parent = match &layout.nodes[node.parent].kind {
            Kind::Dir(p) => p.number,
            _ => 1,
        };
        out.push(node.id.len() as u8);
        out.push(0);
        if big_endian {
            out.extend_from_slice(&dir.block.to_be_bytes());
            out.extend_from_slice(&parent.to_be_bytes());
        } else {
            out.extend_from_slice(&dir.block.to_le_bytes());
            out.extend_from_slice(&parent.to_le_bytes());
        }
        out.extend_from_slice(&node.id);
        if node.id.len() % 2 == 1 {
            out.push(0);
        }
    }
    let padded = (out.len() as u64).div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
    out.resize(padded as usize, 0);
    out
}
