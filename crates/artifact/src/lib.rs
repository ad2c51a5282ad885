//! The file-system edge of secretvm: it loads inputs from disk, hands bytes and streams to the
//! pure format crates, and writes their output atomically.
//!
//! **Architecture Invariant:** this is the only library crate that opens files or directories.
//! It starts no processes and prints nothing.
//!
//! Every artifact is written to a temporary file in the destination directory, flushed to disk,
//! given mode 0644 and then renamed over the final path, so an error or an interrupt never leaves
//! a partial artifact at that path.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use secretvm_pack::initramfs::{self, Kind, Node};

/// Why an artifact could not be loaded or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system operation failed on `path`.
    #[error("cannot {op} {path}")]
    Io {
        /// What we tried to do ("read", "create", ...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A path inside an input tree is not valid UTF-8.
    #[error("{path}: file names must be UTF-8")]
    NonUtf8Path {
        /// The offending path (lossily shown).
        path: PathBuf,
    },
    /// An input tree holds something that cannot go into an archive.
    #[error("{path}: {problem}")]
    Unsupported {
        /// The offending path.
        path: PathBuf,
        /// What is wrong.
        problem: &'static str,
    },
    /// A `gen_init_cpio` description is malformed.
    #[error("{path}")]
    Spec {
        /// The description file.
        path: PathBuf,
        /// The parse error, with its line.
        #[source]
        source: secretvm_pack::spec::Error,
    },
    /// The initramfs could not be built.
    #[error("cannot build the initramfs {path}")]
    Initramfs {
        /// The output path.
        path: PathBuf,
        /// Why.
        #[source]
        source: initramfs::Error,
    },
    /// The cpio archive cannot become an ISO image, or its data could not be copied.
    #[error("{path}: cannot make an ISO image")]
    Iso {
        /// The cpio archive.
        path: PathBuf,
        /// Why.
        #[source]
        source: secretvm_pack::iso::Error,
    },
    /// The raw disk could not be packed into the GCP tarball.
    #[error("{path}: cannot make the GCP tarball")]
    GcpTar {
        /// The raw disk image.
        path: PathBuf,
        /// Why.
        #[source]
        source: secretvm_pack::gcp::Error,
    },
    /// The qcow2 image could not be made or read.
    #[error("{path}")]
    Qcow2 {
        /// The image path.
        path: PathBuf,
        /// Why.
        #[source]
        source: secretvm_qcow2::Error,
    },
}

/// `Result` of this crate.
pub type Result<T> = std::result::Result<T, Error>;

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io { op, path: path.to_path_buf(), source }
}

/// Writes `path` atomically: `fill` writes into a temporary file next to it, which is flushed,
/// synced, given mode 0644 and renamed to `path` only if `fill` succeeds.
pub fn write_atomically<T>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&File>) -> Result<T>,
) -> Result<T> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".secretvm-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(io_error("create a temporary file in", dir))?;
    let value = {
        let mut out = BufWriter::with_capacity(1 << 20, temp.as_file());
        let value = fill(&mut out)?;
        out.flush().map_err(io_error("write", path))?;
        value
    };
    temp.as_file().sync_all().map_err(io_error("sync", path))?;
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o644))
        .map_err(io_error("set the mode of", temp.path()))?;
    temp.persist(path).map_err(|e| Error::Io {
        op: "rename into",
        path: path.into(),
        source: e.error,
    })?;
    Ok(value)
}

/// Opens a regular file for reading and returns its size with it (one `fstat`, on the open file).
pub fn open_file(path: &Path) -> io::Result<(u64, File)> {
    let with_path = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let file = File::open(path).map_err(with_path)?;
    let meta = file.metadata().map_err(with_path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a regular file", path.display()),
        ));
    }
    Ok((meta.len(), file))
}

/// Walks `dir` (not following symbolic links) into initramfs nodes, without the root itself.
/// Hard links are grouped by (device, inode). File contents are not read here.
pub fn load_tree(dir: &Path) -> Result<Vec<Node<PathBuf>>> {
    let mut nodes = Vec::new();
    let mut groups: HashMap<(u64, u64), u64> = HashMap::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((fs_dir, archive_dir)) = pending.pop() {
        for entry in fs::read_dir(&fs_dir).map_err(io_error("list", &fs_dir))? {
            let entry = entry.map_err(io_error("list", &fs_dir))?;
            let fs_path = entry.path();
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| Error::NonUtf8Path { path: fs_path.clone() })?;
            let path = if archive_dir.is_empty() { name } else { format!("{archive_dir}/{name}") };
            let meta = fs::symlink_metadata(&fs_path).map_err(io_error("stat", &fs_path))?;
            let file_type = meta.file_type();
            let (major, minor) = dev_numbers(meta.rdev());
            let mut link_group = None;
            let kind = if file_type.is_dir() {
                pending.push((fs_path.clone(), path.clone()));
                Kind::Directory
            } else if file_type.is_file() {
                if meta.nlink() > 1 {
                    let next = groups.len() as u64;
                    link_group = Some(*groups.entry((meta.dev(), meta.ino())).or_insert(next));
                }
                Kind::File { source: fs_path.clone() }
            } else if file_type.is_symlink() {
                let target =
                    fs::read_link(&fs_path).map_err(io_error("read the link", &fs_path))?;
                let target = target
                    .into_os_string()
                    .into_string()
                    .map_err(|_| Error::NonUtf8Path { path: fs_path.clone() })?;
                Kind::Symlink { target }
            } else if file_type.is_char_device() {
                Kind::CharDevice { major, minor }
            } else if file_type.is_block_device() {
                Kind::BlockDevice { major, minor }
            } else if file_type.is_fifo() {
                Kind::Fifo
            } else if file_type.is_socket() {
                Kind::Socket
            } else {
                return Err(Error::Unsupported { path: fs_path, problem: "unknown file type" });
            };
            nodes.push(Node {
                path,
                kind,
                permissions: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: u64::try_from(meta.mtime()).unwrap_or(0),
                link_group,
            });
        }
    }
    Ok(nodes)
}

/// Splits a Linux `dev_t` into major and minor numbers (glibc's encoding).
fn dev_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff);
    (major as u32, minor as u32)
}

/// Reads a `gen_init_cpio` description; file locations are resolved relative to its directory.
/// Every entry gets modification time `mtime`.
pub fn load_spec(path: &Path, mtime: u64) -> Result<Vec<Node<PathBuf>>> {
    let text = fs::read_to_string(path).map_err(io_error("read", path))?;
    let nodes = secretvm_pack::spec::parse(&text, mtime)
        .map_err(|source| Error::Spec { path: path.to_path_buf(), source })?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(nodes.into_iter().map(|node| node.map_source(|location| base.join(location))).collect())
}

/// Builds an initramfs from `nodes` and writes it atomically to `out`; returns its size in bytes.
pub fn write_initramfs(
    nodes: Vec<Node<PathBuf>>,
    options: &initramfs::Options,
    out: &Path,
) -> Result<u64> {
    write_atomically(out, |file| {
        let mut counter = CountingWriter { inner: file, count: 0 };
        initramfs::write(nodes, options, |p: &PathBuf| open_file(p), &mut counter)
            .map_err(|source| Error::Initramfs { path: out.to_path_buf(), source })?;
        Ok(counter.count)
    })
}

/// Creates the empty qcow2 image `qemu-img create -f qcow2 PATH SIZE` would, atomically.
pub fn create_qcow2(path: &Path, virtual_size: u64) -> Result<()> {
    write_atomically(path, |file| {
        secretvm_qcow2::write_empty_image(virtual_size, file)
            .map_err(|source| Error::Qcow2 { path: path.to_path_buf(), source })
    })
}

/// Reads and validates the header of the qcow2 image at `path`.
pub fn qcow2_info(path: &Path) -> Result<secretvm_qcow2::Info> {
    let (len, file) = open_file(path).map_err(io_error("open", path))?;
    // The header, its extensions and the backing-file name live in the first cluster, which is at
    // most 2 MiB.
    let mut head = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(&file, 2 << 20), &mut head)
        .map_err(io_error("read", path))?;
    secretvm_qcow2::read_header(&head, len)
        .map_err(|source| Error::Qcow2 { path: path.to_path_buf(), source })
}

/// Counts the bytes written through it.
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub mod compare;
pub mod hashed;
pub mod iso;
mod mapped;

pub use mapped::MappedFile;

#[cfg(test)]
mod tests;
