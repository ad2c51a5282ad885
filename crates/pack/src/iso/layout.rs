//! The first pass: read the cpio headers into a tree and lay out every block of the image.

use std::collections::HashMap;
use std::io::Read;

use super::names::{self, Child};
use super::rr::{self, CE_LEN, PIECE_MAX, Sua};
use super::time::record_date;
use super::{BLOCK_SIZE, Error, LINUX_NAME_MAX, Options, Result};
use crate::cpio::{self, FileType};

/// The largest extent of a multi-extent file: the largest block multiple below 4 GiB, as libisofs.
pub(super) const SECTION_MAX: u64 = 0xFFFF_F800;

/// The largest Rock Ridge name component accepted at all (Linux `NAME_MAX`).
const NAME_MAX: usize = 255;

/// The first block after the system area, the volume descriptor and the terminator.
const FIRST_DIR_BLOCK: u32 = 18;

/// The complete plan of an image: every entry, every block, and where each file's data is in the
/// cpio.
///
/// Made by [`plan`], consumed by [`write`](super::write).
#[derive(Debug)]
pub struct Layout {
    pub(super) nodes: Vec<Node>,
    /// Directory node indices in depth-first pre-order (the order their extents are written).
    pub(super) dirs: Vec<usize>,
    /// Directory node indices in path-table order (by level, parent number, identifier).
    pub(super) path_order: Vec<usize>,
    pub(super) data: Vec<Data>,
    /// Indices into `data`, in the order of their extents.
    pub(super) data_order: Vec<usize>,
    pub(super) path_table_len: u32,
    pub(super) l_path_block: u32,
    pub(super) m_path_block: u32,
    pub(super) empty_block: u32,
    pub(super) total_blocks: u32,
    pub(super) options: Options,
}

impl Layout {
    /// The size of the image in bytes.
    pub fn image_len(&self) -> u64 {
        u64::from(self.total_blocks) * BLOCK_SIZE
    }

    /// The number of entries (directories, files, links, nodes), the root included.
    pub fn entry_count(&self) -> usize {
        self.nodes.len()
    }

    /// The number of bytes of file data the image holds (each hard-link set once).
    pub fn data_len(&self) -> u64 {
        self.data.iter().map(|d| d.len).sum()
    }
}

/// One entry of the tree.
#[derive(Debug)]
pub(super) struct Node {
    /// The full path, `.` for the root.
    pub(super) path: String,
    /// The Rock Ridge name: the last path component.
    pub(super) name: String,
    /// The ISO 9660 identifier without the version.
    pub(super) id: Vec<u8>,
    pub(super) parent: usize,
    pub(super) kind: Kind,
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) nlink: u32,
    pub(super) date: [u8; 7],
    /// The System Use areas of this entry's records in its parent (one per extent section).
    pub(super) records: Vec<Record>,
}

/// What an entry is.
#[derive(Debug)]
pub(super) enum Kind {
    Dir(Dir),
    /// A regular file; its data, if it has any, is `data[index]`.
    File(Option<usize>),
    Symlink(String),
    Device {
        high: u32,
        low: u32,
    },
    /// A fifo or a socket: the mode says which.
    Other,
}

/// A directory's children and its place in the image.
#[derive(Debug, Default)]
pub(super) struct Dir {
    /// Child node indices in ISO 9660 order.
    pub(super) children: Vec<usize>,
    pub(super) block: u32,
    /// Length of the directory extent in bytes (a block multiple).
    pub(super) len: u32,
    /// First block of the continuation area, and its number of blocks.
    pub(super) ce_block: u32,
    pub(super) ce_blocks: u32,
    /// The records of `.` and `..`.
    pub(super) dot: Record,
    pub(super) dotdot: Record,
    /// The number of this directory in the path tables (1 for the root).
    pub(super) number: u16,
}

/// One directory record's System Use area and its continuation pieces.
#[derive(Debug, Default, Clone)]
pub(super) struct Record {
    /// Byte offset of the record in its directory's extent.
    pub(super) offset: u32,
    pub(super) len: u8,
    pub(super) sua: Vec<u8>,
    /// The continuation pieces: byte offset in the directory's continuation area, and content
    /// (without the CE entry that chains to the next piece).
    pub(super) pieces: Vec<(u32, Vec<u8>)>,
}

/// The data of a regular file (or a hard-link set) in the cpio and in the image.
#[derive(Debug)]
pub(super) struct Data {
    /// The path of the member that carries the data.
    pub(super) path: String,
    pub(super) cpio_offset: u64,
    pub(super) len: u64,
    pub(super) block: u32,
}

/// One cpio entry as read by the first pass.
struct Raw {
    header: cpio::Header,
    file_type: FileType,
    target: Option<String>,
    data_offset: u64,
}

/// Reads every header of the cpio from `reader` (symlink targets included, other data skipped)
/// and lays out the image.
///
/// The result depends only on the set of entries and on `options`, not on their order in the
/// archive.
pub fn plan<R: Read>(mut reader: cpio::Reader<R>, options: &Options) -> Result<Layout> {
    check_identifier("volume identifier", &options.volume_id, 32, false)?;
    check_identifier("data preparer identifier", &options.preparer_id, 128, true)?;
    let mut raws = Vec::new();
    while let Some(mut entry) = reader.next_entry()? {
        let header = entry.header().clone();
        let Some(file_type) = header.file_type() else {
            // The reader rejects unknown types; stay total anyway.
            continue;
        };
        let target = match file_type {
            FileType::Symlink => Some(entry.read_symlink_target()?),
            _ => None,
        };
        // Once the entry is no longer used, the reader stands at the start of its data (unread
        // data is skipped only when the next entry is asked for).
        raws.push(Raw { header, file_type, target, data_offset: reader.offset() });
    }
    raws.sort_by(|a, b| a.header.name.as_bytes().cmp(b.header.name.as_bytes()));
    build(raws, options)
}

/// Checks an identifier of the volume descriptor: d-characters (or a-characters) only.
fn check_identifier(field: &'static str, value: &str, max: usize, a_chars: bool) -> Result<()> {
    let bad = |problem| Error::BadIdentifier { field, value: value.to_owned(), problem };
    if value.len() > max {
        return Err(bad("too long"));
    }
    if !a_chars && value.is_empty() {
        return Err(bad("empty"));
    }
    let ok = |b: u8| {
        b.is_ascii_uppercase()
            || b.is_ascii_digit()
            || b == b'_'
            || (a_chars && b" !\"%&'()*+,-./:;<=>?".contains(&b))
    };
    if !value.bytes().all(ok) {
        return Err(bad(if a_chars {
            "only A-Z, 0-9, space and !\"%&'()*+,-./:;<=>?_ are allowed"
        } else {
            "only A-Z, 0-9 and _ are allowed"
        }));
    }
    Ok(())
}

/// The time an entry shows: the cpio mtime clamped to the epoch, or the epoch.
fn entry_time(options: &Options, mtime: u32) -> u64 {
    if options.all_times_epoch { options.epoch } else { u64::from(mtime).min(options.epoch) }
}

/// PN's two numbers for a device, or `None` if Linux would read another device.
fn device_numbers(major: u32, minor: u32) -> Option<(u32, u32)> {
    if major <= 0xFFF && minor <= 0xFF {
        // What xorriso writes for such numbers, and what every reader decodes alike.
        Some((0, major << 8 | minor))
    } else if major != 0 && major <= 0xFFF && minor <= 0xF_FFFF {
        // Linux: `high != 0`, so `MKDEV(high, low)`.
        Some((major, minor))
    } else {
        None
    }
}

/// Builds the tree from the sorted entries and lays it out.
fn build(raws: Vec<Raw>, options: &Options) -> Result<Layout> {
    let mut nodes: Vec<Node> = Vec::with_capacity(raws.len() + 1);
    let mut index: HashMap<String, usize> = HashMap::with_capacity(raws.len() + 1);
    let mut data: Vec<Data> = Vec::new();
    // Hard-link sets of regular files: (ino, dev major, dev minor) -> members.
    let mut links: HashMap<(u32, u32, u32), Vec<usize>> = HashMap::new();
    // Where each regular file's data is in the cpio: (offset, size).
    let mut file_data: HashMap<usize, (u64, u64)> = HashMap::new();

    let root_time = |mtime| record_date("the root's mtime", entry_time(options, mtime));
    let mut raws = raws.into_iter().peekable();
    let root = match raws.next_if(|r| r.header.name == ".") {
        Some(raw) => {
            if raw.file_type != FileType::Directory {
                return Err(Error::RootNotDirectory);
            }
            (raw.header.mode, raw.header.uid, raw.header.gid, root_time(raw.header.mtime)?)
        }
        None => (0o040755, 0, 0, record_date("the epoch", options.epoch)?),
    };
    nodes.push(Node {
        path: ".".to_owned(),
        name: String::new(),
        id: vec![0],
        parent: 0,
        kind: Kind::Dir(Dir::default()),
        mode: root.0,
        uid: if options.owner_root { 0 } else { root.1 },
        gid: if options.owner_root { 0 } else { root.2 },
        nlink: 1,
        date: root.3,
        records: Vec::new(),
    });
    index.insert(".".to_owned(), 0);

    for raw in raws {
        let h = &raw.header;
        let path = h.name.clone();
        let (parent_path, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (parent, name),
            None => (".", path.as_str()),
        };
        let max = if options.allow_long_names { NAME_MAX } else { LINUX_NAME_MAX };
        if name.len() > max {
            return Err(Error::NameTooLong { path: path.clone(), name_len: name.len(), max });
        }
        let Some(&parent) = index.get(parent_path) else {
            return Err(Error::MissingParent {
                path: path.clone(),
                parent: parent_path.to_owned(),
            });
        };
        if !matches!(nodes[parent].kind, Kind::Dir(_)) {
            return Err(Error::ParentNotDirectory {
                path: path.clone(),
                parent: parent_path.to_owned(),
            });
        }
        let me = nodes.len();
        let kind = match raw.file_type {
            FileType::Directory => Kind::Dir(Dir::default()),
            FileType::Regular => {
                file_data.insert(me, (raw.data_offset, u64::from(h.file_size)));
                if h.nlink > 1 {
                    links.entry((h.ino, h.dev_major, h.dev_minor)).or_default().push(me);
                }
                Kind::File(None)
            }
            FileType::Symlink => Kind::Symlink(raw.target.clone().unwrap_or_default()),
            FileType::CharDevice | FileType::BlockDevice => {
                let (high, low) = device_numbers(h.rdev_major, h.rdev_minor).ok_or_else(|| {
                    Error::DeviceNumber {
                        path: path.clone(),
                        major: h.rdev_major,
                        minor: h.rdev_minor,
                    }
                })?;
                Kind::Device { high, low }
            }
            FileType::Fifo | FileType::Socket => Kind::Other,
        };
        let date = record_date("an entry's mtime", entry_time(options, h.mtime))?;
        let id = match kind {
            Kind::Dir(_) => names::dir_id(name),
            _ => names::file_id(name),
        };
        nodes.push(Node {
            name: name.to_owned(),
            id,
            parent,
            kind,
            mode: h.mode,
            uid: if options.owner_root { 0 } else { h.uid },
            gid: if options.owner_root { 0 } else { h.gid },
            nlink: 1,
            date,
            records: Vec::new(),
            path,
        });
        index.insert(nodes[me].path.clone(), me);
        if let Kind::Dir(dir) = &mut nodes[parent].kind {
            dir.children.push(me);
        }
    }
    drop(index);

    // File data: one extent per hard-link set, from the last member (in path order) with data.
    let mut linked = vec![false; nodes.len()];
    let mut sets: Vec<Vec<usize>> = links.into_values().collect();
    sets.sort();
    for members in sets {
        let mut chosen: Option<(usize, u64, u64)> = None;
        for &m in &members {
            linked[m] = true;
            let (offset, len) = file_data.get(&m).copied().unwrap_or_default();
            if len == 0 {
                continue;
            }
            if let Some((other, _, other_len)) = chosen
                && other_len != len
            {
                return Err(Error::HardLinkData {
                    path: nodes[m].path.clone(),
                    size: len,
                    other: nodes[other].path.clone(),
                    other_size: other_len,
                });
            }
            chosen = Some((m, offset, len));
        }
        let slot = chosen.map(|(m, offset, len)| {
            data.push(Data { path: nodes[m].path.clone(), cpio_offset: offset, len, block: 0 });
            data.len() - 1
        });
        let count = u32::try_from(members.len()).unwrap_or(u32::MAX);
        for &m in &members {
            nodes[m].nlink = count;
            nodes[m].kind = Kind::File(slot);
        }
    }
    let mut singles: Vec<(usize, (u64, u64))> =
        file_data.into_iter().filter(|(m, (_, len))| !linked[*m] && *len > 0).collect();
    singles.sort();
    for (m, (offset, len)) in singles {
        data.push(Data { path: nodes[m].path.clone(), cpio_offset: offset, len, block: 0 });
        nodes[m].kind = Kind::File(Some(data.len() - 1));
    }

    name_children(&mut nodes)?;
    link_counts(&mut nodes, options);
    let dirs = preorder_dirs(&nodes);
    let path_order = path_table_order(&nodes);
    if path_order.len() > usize::from(u16::MAX) {
        return Err(Error::TooManyDirectories { count: path_order.len() });
    }
    for (number, &d) in path_order.iter().enumerate() {
        if let Kind::Dir(dir) = &mut nodes[d].kind {
            // Checked above: at most 65535 directories.
            dir.number = u16::try_from(number + 1).unwrap_or(u16::MAX);
        }
    }

    let mut next_block = FIRST_DIR_BLOCK;
    for &d in &dirs {
        lay_out_dir(&mut nodes, &data, d, &mut next_block)?;
    }
    let path_table_len: u32 = path_order
        .iter()
        .map(|&d| {
            let id_len = nodes[d].id.len() as u32;
            8 + id_len + id_len % 2
        })
        .sum();
    let path_blocks = blocks(u64::from(path_table_len))?;
    let l_path_block = next_block;
    let m_path_block = add_blocks(l_path_block, path_blocks)?;
    let empty_block = add_blocks(m_path_block, path_blocks)?;
    next_block = add_blocks(empty_block, 1)?;

    let mut data_order = Vec::with_capacity(data.len());
    let mut placed = vec![false; data.len()];
    walk_files(&nodes, 0, &mut |node| {
        if let Kind::File(Some(slot)) = nodes[node].kind
            && !placed[slot]
        {
            placed[slot] = true;
            data_order.push(slot);
        }
    });
    for &slot in &data_order {
        data[slot].block = next_block;
        next_block = add_blocks(next_block, blocks(data[slot].len)?)?;
    }
    next_block = add_blocks(next_block, options.pad_blocks)?;
    Ok(Layout {
        nodes,
        dirs,
        path_order,
        data,
        data_order,
        path_table_len,
        l_path_block,
        m_path_block,
        empty_block,
        total_blocks: next_block,
        options: options.clone(),
    })
}

/// The number of blocks `len` bytes take.
fn blocks(len: u64) -> Result<u32> {
    u32::try_from(len.div_ceil(BLOCK_SIZE)).map_err(|_| Error::ImageTooLarge)
}

/// `block + count`, or an error past 2^32 blocks.
fn add_blocks(block: u32, count: u32) -> Result<u32> {
    block.checked_add(count).ok_or(Error::ImageTooLarge)
}

/// Gives every directory's children unique identifiers and sorts them in ISO 9660 order.
fn name_children(nodes: &mut [Node]) -> Result<()> {
    for d in 0..nodes.len() {
        let Kind::Dir(dir) = &nodes[d].kind else { continue };
        let ids: Vec<(usize, Vec<u8>)> = {
            let mut children: Vec<(usize, Child<'_>)> = dir
                .children
                .iter()
                .map(|&c| {
                    let node = &nodes[c];
                    let is_dir = matches!(node.kind, Kind::Dir(_));
                    (c, Child { id: node.id.clone(), name: &node.name, is_dir })
                })
                .collect();
            let mut only: Vec<Child<'_>> =
                children.iter().map(|(_, c)| Child { id: c.id.clone(), ..*c }).collect();
            names::mangle(&mut only).map_err(|id| Error::NameCollision {
                path: nodes[d].path.clone(),
                name: String::from_utf8_lossy(&id).into_owned(),
            })?;
            // Match the mangled children back to their nodes by Rock Ridge name (unique).
            let by_name: HashMap<&str, usize> =
                children.iter().map(|(c, child)| (child.name, *c)).collect();
            let out = only
                .iter()
                .filter_map(|child| by_name.get(child.name).map(|&c| (c, child.id.clone())))
                .collect();
            children.clear();
            out
        };
        let mut order = Vec::with_capacity(ids.len());
        for (c, id) in ids {
            nodes[c].id = id;
            order.push(c);
        }
        if let Kind::Dir(dir) = &mut nodes[d].kind {
            dir.children = order;
        }
    }
    Ok(())
}

/// Sets directory link counts: 2 plus the subdirectories, or 1.
fn link_counts(nodes: &mut [Node], options: &Options) {
    for d in 0..nodes.len() {
        let Kind::Dir(dir) = &nodes[d].kind else { continue };
        let subdirs =
            dir.children.iter().filter(|&&c| matches!(nodes[c].kind, Kind::Dir(_))).count();
        nodes[d].nlink = if options.directory_nlink_one {
            1
        } else {
            u32::try_from(subdirs).unwrap_or(u32::MAX).saturating_add(2)
        };
    }
}

/// The children of `node` if it is a directory.
fn children(nodes: &[Node], node: usize) -> &[usize] {
    match &nodes[node].kind {
        Kind::Dir(dir) => &dir.children,
        _ => &[],
    }
}

/// Directories in depth-first pre-order, children in ISO order.
fn preorder_dirs(nodes: &[Node]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut stack = vec![0usize];
    while let Some(d) = stack.pop() {
        out.push(d);
        for &c in children(nodes, d).iter().rev() {
            if matches!(nodes[c].kind, Kind::Dir(_)) {
                stack.push(c);
            }
        }
    }
    out
}

/// Calls `visit` for every entry in depth-first pre-order, children in ISO order.
fn walk_files(nodes: &[Node], root: usize, visit: &mut impl FnMut(usize)) {
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        visit(n);
        for &c in children(nodes, n).iter().rev() {
            stack.push(c);
        }
    }
}

/// Directories breadth first: by level, then parent number, then identifier (ECMA-119 9.4).
fn path_table_order(nodes: &[Node]) -> Vec<usize> {
    let mut out = vec![0usize];
    let mut i = 0;
    while let Some(&d) = out.get(i) {
        for &c in children(nodes, d) {
            if matches!(nodes[c].kind, Kind::Dir(_)) {
                out.push(c);
            }
        }
        i += 1;
    }
    out
}

/// The fixed Rock Ridge entries of a node: PX, TF, and PN for devices.
fn fixed_entries(node: &Node) -> Vec<u8> {
    let mut out = Vec::with_capacity(82);
    rr::px(&mut out, node.mode, node.nlink, node.uid, node.gid);
    rr::tf(&mut out, &node.date);
    if let Kind::Device { high, low } = node.kind {
        rr::pn(&mut out, high, low);
    }
    out
}

/// The length of a directory record before its System Use area: 33 bytes, the identifier, and
/// a pad byte when the identifier's length is even (ECMA-119 9.1.12).
pub(super) fn base_len(id_len: usize) -> usize {
    33 + id_len + usize::from(id_len.is_multiple_of(2))
}

/// The number of extent sections of a node's records: more than one only for files larger than
/// [`SECTION_MAX`].
pub(super) fn sections(len: u64) -> u64 {
    len.div_ceil(SECTION_MAX).max(1)
}

/// Places one directory: its records, its extent and its continuation area.
fn lay_out_dir(nodes: &mut [Node], data: &[Data], d: usize, next_block: &mut u32) -> Result<()> {
    let mut ce_len: u64 = 0;
    let mut len: u64 = 0;
    let place = |sua: Sua, base: usize, ce_len: &mut u64, len: &mut u64| -> Record {
        let pieces: Vec<Vec<u8>> = rr::pieces(&sua.continued);
        let count = pieces.len();
        let mut placed = Vec::with_capacity(count);
        for (i, piece) in pieces.into_iter().enumerate() {
            let chain = if i + 1 < count { CE_LEN } else { 0 };
            let piece_len = (piece.len() + chain) as u64;
            let in_block = *ce_len % BLOCK_SIZE;
            if in_block + piece_len > PIECE_MAX as u64 {
                *ce_len += BLOCK_SIZE - in_block;
            }
            // Continuation areas of one directory stay far below 4 GiB: a record has at most a
            // few pieces and a directory at most 2^32 records' worth of blocks.
            placed.push((u32::try_from(*ce_len).unwrap_or(u32::MAX), piece));
            *ce_len += piece_len;
        }
        let ce = if placed.is_empty() { 0 } else { CE_LEN };
        let raw = base + sua.inline.len() + ce;
        let rec_len = raw + raw % 2;
        let in_block = *len % BLOCK_SIZE;
        if in_block + rec_len as u64 > BLOCK_SIZE {
            *len += BLOCK_SIZE - in_block;
        }
        let offset = u32::try_from(*len).unwrap_or(u32::MAX);
        *len += rec_len as u64;
        Record {
            offset,
            // A record is at most 254 bytes: `space` below keeps the System Use area within it.
            len: u8::try_from(rec_len).unwrap_or(u8::MAX),
            sua: sua.inline,
            pieces: placed,
        }
    };

    let parent = nodes[d].parent;
    let space = 254 - base_len(1);
    let mut dot_fixed = Vec::new();
    if d == 0 {
        rr::sp(&mut dot_fixed);
    }
    dot_fixed.extend(fixed_entries(&nodes[d]));
    let dot_sua = if d == 0 {
        Sua { inline: dot_fixed, continued: vec![rr::er()] }
    } else {
        rr::split(dot_fixed, None, None, space)
    };
    let dot = place(dot_sua, base_len(1), &mut ce_len, &mut len);
    let dotdot_sua = rr::split(fixed_entries(&nodes[parent]), None, None, space);
    let dotdot = place(dotdot_sua, base_len(1), &mut ce_len, &mut len);

    let child_ids: Vec<usize> = children(nodes, d).to_vec();
    for c in child_ids {
        let node = &nodes[c];
        let id_len = node.id.len() + if matches!(node.kind, Kind::Dir(_)) { 0 } else { 2 };
        let base = base_len(id_len);
        let space = 254usize.saturating_sub(base);
        let target = match &node.kind {
            Kind::Symlink(t) => Some(t.as_str()),
            _ => None,
        };
        let sua = rr::split(fixed_entries(node), Some(&node.name), target, space);
        let count = match node.kind {
            Kind::File(Some(slot)) => data.get(slot).map_or(1, |d| sections(d.len)),
            _ => 1,
        };
        let mut records = Vec::new();
        for _ in 0..count {
            records.push(place(sua.clone(), base, &mut ce_len, &mut len));
        }
        nodes[c].records = records;
    }

    let dir_len = len.div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
    let dir_blocks = blocks(dir_len)?;
    let ce_blocks = blocks(ce_len)?;
    let block = *next_block;
    let ce_block = add_blocks(block, dir_blocks)?;
    *next_block = add_blocks(ce_block, ce_blocks)?;
    if let Kind::Dir(dir) = &mut nodes[d].kind {
        dir.block = block;
        dir.len = u32::try_from(dir_len).map_err(|_| Error::ImageTooLarge)?;
        dir.ce_block = ce_block;
        dir.ce_blocks = ce_blocks;
        dir.dot = dot;
        dir.dotdot = dotdot;
    }
    Ok(())
}
