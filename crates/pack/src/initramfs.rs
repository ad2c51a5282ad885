//! Reproducible initramfs: a tree description in, the exact same `cpio` (optionally gzip) bytes
//! out on every machine.
//!
//! The rules, each chosen so that nothing about the build machine leaks into the bytes:
//! - Entries are sorted by the bytes of their path (`LC_ALL=C sort`), so parents precede children.
//!   A root entry (path `.`) comes first.
//! - Inode numbers are assigned from 1 in output order; `dev` is 0:0 (as GNU cpio
//!   `--reproducible` writes).
//! - A hard-link set (nodes sharing a `link_group`) becomes consecutive entries that share one
//!   inode number and carry `nlink` = the number of names, with the data on the last one, which is
//!   the newc convention the kernel and GNU cpio follow. The set is emitted at the sort position of
//!   its last name, so every parent directory of every name already exists when the set arrives.
//! - A directory's `nlink` is 2 plus its number of subdirectories, computed from the tree (file
//!   systems disagree: btrfs reports 1).
//! - Modification times are clamped to `epoch` (`SOURCE_DATE_EPOCH`).
//! - gzip: no file name, mtime 0, OS byte 3 (Unix, as `gzip -n` writes), compressed by the pinned
//!   `flate2` + zlib-rs backend. Another backend would give other bytes, which the pinned
//!   known-answer test in this module's tests would catch.
//!
//! The caller supplies file contents through an `open` callback, so this module never touches
//! the file system: the edge crate opens files, tests pass byte slices.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};

use flate2::{Compression, GzBuilder};

use crate::cpio::{self, FileType, Format, Header};

/// What a node is, with the data each kind needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<S> {
    /// A regular file whose contents come from `source` through the `open` callback.
    File {
        /// Where the contents come from; opaque to this module.
        source: S,
    },
    /// A directory.
    Directory,
    /// A symbolic link to `target`.
    Symlink {
        /// The link target, stored verbatim.
        target: String,
    },
    /// A character device.
    CharDevice {
        /// Major device number.
        major: u32,
        /// Minor device number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Major device number.
        major: u32,
        /// Minor device number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
}

/// One path of the tree to archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node<S> {
    /// The path inside the archive: relative, `/`-separated; a leading `/` or `./` is removed,
    /// and `.` (or `/`) names the root.
    pub path: String,
    /// What the node is.
    pub kind: Kind<S>,
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub permissions: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time in seconds since the Unix epoch, before clamping.
    pub mtime: u64,
    /// Nodes with the same `Some` group are hard links to one file (regular files only).
    pub link_group: Option<u64>,
}

impl<S> Node<S> {
    /// The same node with the source of its contents (if it is a file) transformed by `f`.
    pub fn map_source<T>(self, f: impl FnOnce(S) -> T) -> Node<T> {
        let kind = match self.kind {
            Kind::File { source } => Kind::File { source: f(source) },
            Kind::Directory => Kind::Directory,
            Kind::Symlink { target } => Kind::Symlink { target },
            Kind::CharDevice { major, minor } => Kind::CharDevice { major, minor },
            Kind::BlockDevice { major, minor } => Kind::BlockDevice { major, minor },
            Kind::Fifo => Kind::Fifo,
            Kind::Socket => Kind::Socket,
        };
        let Node { path, permissions, uid, gid, mtime, link_group, .. } = self;
        Node { path, kind, permissions, uid, gid, mtime, link_group }
    }
}

/// How to write the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `SOURCE_DATE_EPOCH`: no entry gets a later modification time.
    pub epoch: u32,
    /// Force every entry to this `(uid, gid)`; `None` keeps the nodes' owners.
    pub owner: Option<(u32, u32)>,
    /// gzip level 1–9, or `None` for a plain cpio.
    pub gzip_level: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options { epoch: 0, owner: None, gzip_level: Some(9) }
    }
}

/// Why an initramfs could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path is not a clean relative path.
    #[error("initramfs path {path:?}: {problem}")]
    BadPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Two nodes have the same path.
    #[error("initramfs path {path:?} is given twice")]
    DuplicatePath {
        /// The normalized path.
        path: String,
    },
    /// A node's parent directory is not in the tree.
    #[error("initramfs path {path:?}: its parent directory {parent:?} is not in the tree")]
    MissingParent {
        /// The normalized path.
        path: String,
        /// The missing parent.
        parent: String,
    },
    /// Members of one hard-link set disagree, or one is not a regular file.
    #[error("hard link {path:?}: {problem}")]
    BadHardLink {
        /// The normalized path of the offending member.
        path: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A file is larger than newc's 32-bit size field allows.
    #[error("initramfs file {path:?} is {size} bytes; cpio newc holds at most 4294967295")]
    FileTooLarge {
        /// The normalized path.
        path: String,
        /// Its size.
        size: u64,
    },
    /// The `open` callback failed for a file.
    #[error("cannot read the contents of initramfs file {path:?}")]
    Open {
        /// The normalized path.
        path: String,
        /// The callback's error.
        #[source]
        source: io::Error,
    },
    /// The cpio writer failed (including a file whose size changed while it was read).
    #[error(transparent)]
    Cpio(#[from] cpio::Error),
    /// Writing the compressed stream failed.
    #[error("cannot write the initramfs")]
    Write(#[source] io::Error),
}

/// `Result` of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Writes `nodes` as a newc cpio archive (gzip-compressed unless `options.gzip_level` is `None`)
/// into `out` and returns it. `open` returns a file's size and a reader of exactly that many bytes.
pub fn write<S, R, W>(
    nodes: Vec<Node<S>>,
    options: &Options,
    mut open: impl FnMut(&S) -> io::Result<(u64, R)>,
    out: W,
) -> Result<W>
where
    R: Read,
    W: Write,
{
    let plan = plan(nodes)?;
    match options.gzip_level {
        None => write_plan(&plan, options, &mut open, out),
        Some(level) => {
            let gz = gzip(out, level);
            let gz = write_plan(&plan, options, &mut open, gz)?;
            gz.finish().map_err(Error::Write)
        }
    }
}

/// A gzip stream with the fixed header this project's artifacts use: no name, mtime 0, OS 3.
pub fn gzip<W: Write>(out: W, level: u32) -> flate2::write::GzEncoder<W> {
    GzBuilder::new().mtime(0).operating_system(3).write(out, Compression::new(level.min(9)))
}

/// A node after validation, in output order.
struct Planned<S> {
    node: Node<S>,
    ino: u32,
    nlink: u32,
    /// Whether this entry carries the file data (the last member of a hard-link set).
    carries_data: bool,
}

/// Validates the tree and decides the order, inode numbers and link counts.
fn plan<S>(nodes: Vec<Node<S>>) -> Result<Vec<Planned<S>>> {
    let mut by_path: BTreeMap<String, Node<S>> = BTreeMap::new();
    for mut node in nodes {
        node.path = normalize(&node.path)?;
        if let Some(previous) = by_path.insert(node.path.clone(), node) {
            return Err(Error::DuplicatePath { path: previous.path });
        }
    }

    // Subdirectory counts, and a check that every parent exists as a directory.
    let mut subdirs: HashMap<String, u32> = HashMap::new();
    for (path, node) in &by_path {
        if path == "." {
            continue;
        }
        let parent = path.rsplit_once('/').map_or(".", |(p, _)| p);
        if parent != "." {
            match by_path.get(parent) {
                Some(p) if matches!(p.kind, Kind::Directory) => {}
                _ => {
                    return Err(Error::MissingParent {
                        path: path.clone(),
                        parent: parent.to_string(),
                    });
                }
            }
        }
        if matches!(node.kind, Kind::Directory) {
            *subdirs.entry(parent.to_string()).or_default() += 1;
        }
    }

    // Hard-link sets: members in path order, emitted together at the last member's position.
    let mut groups: HashMap<u64, Vec<String>> = HashMap::new();
    for (path, node) in &by_path {
        if let Some(group) = node.link_group {
            if !matches!(node.kind, Kind::File { .. }) {
                return Err(Error::BadHardLink {
                    path: path.clone(),
                    problem: "only regular files can be hard links",
                });
            }
            groups.entry(group).or_default().push(path.clone());
        }
    }

    let mut order: Vec<String> = Vec::with_capacity(by_path.len());
    if by_path.contains_key(".") {
        order.push(".".to_string());
    }
    for (path, node) in &by_path {
        if path == "." {
            continue;
        }
        match node.link_group.and_then(|g| groups.get(&g)) {
            Some(members) if members.len() > 1 => {
                if members.last() == Some(path) {
                    order.extend(members.iter().cloned());
                }
            }
            _ => order.push(path.clone()),
        }
    }

    let mut planned = Vec::with_capacity(order.len());
    let mut next_ino: u32 = 1;
    let mut i = 0;
    while i < order.len() {
        let first = by_path.remove(&order[i]).expect("every ordered path is in the map");
        let members = first.link_group.and_then(|g| groups.get(&g)).map_or(1, Vec::len);
        let ino = next_ino;
        next_ino = next_ino.checked_add(1).ok_or(Error::BadPath {
            path: first.path.clone(),
            problem: "more than 2^32 entries",
        })?;
        let nlink = match first.kind {
            Kind::Directory => 2 + subdirs.get(&first.path).copied().unwrap_or(0),
            _ => u32::try_from(members).unwrap_or(u32::MAX),
        };
        let same_inode = |a: &Node<S>, b: &Node<S>| {
            (a.permissions, a.uid, a.gid, a.mtime) == (b.permissions, b.uid, b.gid, b.mtime)
        };
        let mut set = vec![first];
        for path in &order[i + 1..i + members] {
            let node = by_path.remove(path).expect("every ordered path is in the map");
            if !same_inode(&set[0], &node) {
                return Err(Error::BadHardLink {
                    path: node.path,
                    problem: "its mode, owner or mtime differs from the other names of the file",
                });
            }
            set.push(node);
        }
        let last = set.len() - 1;
        for (k, node) in set.into_iter().enumerate() {
            planned.push(Planned { node, ino, nlink, carries_data: k == last });
        }
        i += members;
    }
    Ok(planned)
}

/// Makes `path` relative and clean: strips one leading `/` or `./`, rejects the rest.
fn normalize(path: &str) -> Result<String> {
    let bad = |problem| Error::BadPath { path: path.to_string(), problem };
    let trimmed = path.strip_prefix("./").or_else(|| path.strip_prefix('/')).unwrap_or(path);
    if trimmed.is_empty() || trimmed == "." {
        return Ok(".".to_string());
    }
    if trimmed.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    if trimmed.len() >= cpio::PATH_MAX {
        return Err(bad("is longer than PATH_MAX"));
    }
    for component in trimmed.split('/') {
        match component {
            "" => return Err(bad("has an empty component (`//` or a trailing `/`)")),
            "." => return Err(bad("has a `.` component")),
            ".." => return Err(bad("has a `..` component")),
            _ => {}
        }
    }
    Ok(trimmed.to_string())
}

fn write_plan<S, R, W>(
    plan: &[Planned<S>],
    options: &Options,
    open: &mut impl FnMut(&S) -> io::Result<(u64, R)>,
    out: W,
) -> Result<W>
where
    R: Read,
    W: Write,
{
    let mut writer = cpio::Writer::new(out, Format::Newc);
    for entry in plan {
        let node = &entry.node;
        let (uid, gid) = options.owner.unwrap_or((node.uid, node.gid));
        let mut header = Header {
            name: node.path.clone(),
            ino: entry.ino,
            mode: node.permissions & 0o7777,
            uid,
            gid,
            nlink: entry.nlink,
            mtime: u32::try_from(node.mtime.min(u64::from(options.epoch))).unwrap_or(options.epoch),
            ..Header::default()
        };
        let file_type = match &node.kind {
            Kind::File { .. } => FileType::Regular,
            Kind::Directory => FileType::Directory,
            Kind::Symlink { .. } => FileType::Symlink,
            Kind::CharDevice { .. } => FileType::CharDevice,
            Kind::BlockDevice { .. } => FileType::BlockDevice,
            Kind::Fifo => FileType::Fifo,
            Kind::Socket => FileType::Socket,
        };
        header.mode |= file_type.mode_bits();
        match &node.kind {
            Kind::File { source } if entry.carries_data => {
                let (size, reader) = open(source)
                    .map_err(|source| Error::Open { path: node.path.clone(), source })?;
                let Ok(file_size) = u32::try_from(size) else {
                    return Err(Error::FileTooLarge { path: node.path.clone(), size });
                };
                header.file_size = file_size;
                writer.append(&header, reader)?;
            }
            Kind::Symlink { target } => {
                header.file_size = u32::try_from(target.len()).unwrap_or(u32::MAX);
                writer.append(&header, target.as_bytes())?;
            }
            Kind::CharDevice { major, minor } | Kind::BlockDevice { major, minor } => {
                header.rdev_major = *major;
                header.rdev_minor = *minor;
                writer.append(&header, io::empty())?;
            }
            _ => writer.append(&header, io::empty())?,
        }
    }
    Ok(writer.finish()?)
}

#[cfg(test)]
mod tests;
