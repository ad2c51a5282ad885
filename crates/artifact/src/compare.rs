//! Where two releases, or two artifacts, differ: the question a rebuild that does not match
//! a published digest raises.
//!
//! [`compare_releases`] takes two release directories (as `secretvm build` writes them) and
//! compares the files their `sha256sum.txt` lists by the listed digests (so each release should
//! pass `sha256sum -c` first), and their `manifest.json`. Each pair of files that differs is
//! explained by its format ([`compare_files`]):
//!
//! - cpio archives, also gzip-compressed: the entries added, removed or changed, and for a
//!   changed one the header fields and the SHA-256 of the data or the symlink target (inode and
//!   device numbers, which follow from the order, are not compared entry by entry);
//! - an ISO image `X.iso` whose `X.cpio` differs too: it was made from that cpio, which is where
//!   the difference is explained;
//! - JSON: the paths of the values that differ (or, for texts equal as JSON, the bytes);
//! - anything else, and cpio archives whose entries are all equal: the 4 KiB blocks that
//!   differ, of the decompressed streams for gzip, or, when those are equal, the first byte
//!   where the compressed files differ.
//!
//! Everything is streamed: memory grows with the number of cpio entries, not with file sizes.
//! Both sides are untrusted input; malformed data is reported as such, never a panic.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, BufReader, Read};
use std::path::{Component, Path};

use secretvm_pack::cpio::{self, FileType};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The index file of a release.
pub const SHA256SUM: &str = "sha256sum.txt";
/// The release's digest.
pub const DIGEST: &str = "digest.txt";
/// The release's manifest.
pub const MANIFEST: &str = "manifest.json";

/// The block size of byte comparisons.
pub const BLOCK: u64 = 4096;

/// The largest index or manifest read.
const MAX_INDEX: u64 = 16 << 20;

/// How two releases differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseComparison {
    /// The two `digest.txt` values, when both exist.
    pub digests: Option<(String, String)>,
    /// Files listed only by the first release.
    pub only_in_a: Vec<String>,
    /// Files listed only by the second release.
    pub only_in_b: Vec<String>,
    /// How many listed files have the same digest in both.
    pub same: usize,
    /// The files that differ, in path order (`manifest.json` last), each explained.
    pub differing: Vec<FileComparison>,
}

impl ReleaseComparison {
    /// Whether the releases list the same files with the same digests and equal manifests.
    pub fn identical(&self) -> bool {
        self.only_in_a.is_empty() && self.only_in_b.is_empty() && self.differing.is_empty()
    }
}

/// One file that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileComparison {
    /// Its path, relative to the release directory.
    pub path: String,
    /// How it differs.
    pub difference: Difference,
}

/// How two files differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// Two cpio archives: the entries that differ, in path order.
    Entries(Vec<EntryChange>),
    /// Two cpio archives with the same entries in a different order.
    Order,
    /// An image made from another listed file that differs too.
    MadeFrom(String),
    /// Two JSON documents: the values that differ, up to [`MAX_JSON_CHANGES`], and how many
    /// there are in all.
    Json {
        /// The first differing values.
        changes: Vec<JsonChange>,
        /// How many values differ.
        total: usize,
    },
    /// Compared block by block ([`BLOCK`] bytes).
    Blocks {
        /// The first side's length.
        len_a: u64,
        /// The second side's length.
        len_b: u64,
        /// The offset of the first differing byte.
        first: u64,
        /// How many blocks differ (a block present on one side only counts).
        blocks: u64,
        /// Whether the lengths and offsets are those of the decompressed gzip streams.
        decompressed: bool,
    },
    /// Two gzip files whose decompressed contents are equal: only the compression differs
    /// (level, header fields, the deflate implementation), from this byte of the files on.
    Compression {
        /// The offset of the first differing byte of the gzip files.
        first: u64,
    },
    /// One side cannot be read as its format.
    Unreadable {
        /// `a` or `b`.
        side: char,
        /// Why, with the offset where known.
        reason: String,
    },
}

/// An entry of a cpio archive that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryChange {
    /// The entry's path.
    pub path: String,
    /// What changed.
    pub change: Change,
}

/// What changed about a cpio entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Only in the second archive.
    Added,
    /// Only in the first archive.
    Removed,
    /// In both, with these fields different.
    Fields(Vec<Field>),
}

/// A field of a cpio entry with different values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// `type`, `mode`, `uid`, `gid`, `nlink`, `mtime`, `size`, `rdev`, `sha256` or `target`.
    pub name: &'static str,
    /// The first archive's value.
    pub a: String,
    /// The second archive's value.
    pub b: String,
}

/// A JSON value that differs, named by its path (`machines.tdx.mrtd`, `files[3].sha256`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonChange {
    /// Where it is.
    pub path: String,
    /// The first document's value (compact JSON), `None` if absent.
    pub a: Option<String>,
    /// The second document's value, `None` if absent.
    pub b: Option<String>,
}

/// How many JSON changes are kept.
pub const MAX_JSON_CHANGES: usize = 64;

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.name, self.a, self.b)
    }
}

/// Compares the release directories `a` and `b`.
pub fn compare_releases(a: &Path, b: &Path) -> Result<ReleaseComparison> {
    let index_a = read_index(a)?;
    let index_b = read_index(b)?;
    let digests = match (read_small(&a.join(DIGEST)), read_small(&b.join(DIGEST))) {
        (Ok(Some(da)), Ok(Some(db))) => Some((first_word(&da), first_word(&db))),
        (Err(e), _) | (_, Err(e)) => return Err(e),
        _ => None,
    };
    let differs =
        |path: &str| matches!((index_a.get(path), index_b.get(path)), (Some(x), Some(y)) if x != y);
    let mut comparison = ReleaseComparison {
        digests,
        only_in_a: index_a.keys().filter(|p| !index_b.contains_key(*p)).cloned().collect(),
        only_in_b: index_b.keys().filter(|p| !index_a.contains_key(*p)).cloned().collect(),
        same: index_a.iter().filter(|(p, d)| index_b.get(*p) == Some(d)).count(),
        differing: Vec::new(),
    };
    for path in index_a.keys().filter(|p| differs(p)) {
        let source = path.strip_suffix(".iso").map(|stem| format!("{stem}.cpio"));
        let difference = match source {
            Some(cpio) if differs(&cpio) => Difference::MadeFrom(cpio),
            _ => compare_files(&a.join(path), &b.join(path))?
                .unwrap_or_else(|| listed_but_equal(path)),
        };
        comparison.differing.push(FileComparison { path: path.clone(), difference });
    }
    let (ma, mb) = (a.join(MANIFEST), b.join(MANIFEST));
    if ma.exists() || mb.exists() {
        let (ja, jb) = (read_small(&ma)?, read_small(&mb)?);
        let difference = match (ja, jb) {
            (Some(ja), Some(jb)) => json_or_bytes(&ja, &jb),
            (None, _) => Some(Difference::Unreadable { side: 'a', reason: "missing".into() }),
            (_, None) => Some(Difference::Unreadable { side: 'b', reason: "missing".into() }),
        };
        if let Some(difference) = difference {
            comparison.differing.push(FileComparison { path: MANIFEST.into(), difference });
        }
    }
    Ok(comparison)
}

/// Listed with different digests, yet the bytes are equal: one listing is wrong.
fn listed_but_equal(path: &str) -> Difference {
    Difference::Unreadable {
        side: 'a',
        reason: format!(
            "{SHA256SUM} lists different digests for {path}, but the files are equal: check \
             both releases with `sha256sum -c {SHA256SUM}`"
        ),
    }
}

/// Compares two files by their format; `None` when their bytes are equal.
pub fn compare_files(a: &Path, b: &Path) -> Result<Option<Difference>> {
    let is_json = |p: &Path| p.extension().is_some_and(|e| e == "json");
    if is_json(a) && is_json(b) {
        let (ja, jb) = (read_small(a)?, read_small(b)?);
        return Ok(match (ja, jb) {
            (Some(ja), Some(jb)) => json_or_bytes(&ja, &jb),
            _ => compare_bytes(a, b)?,
        });
    }
    let (Some(kind_a), Some(kind_b)) = (sniff(a)?, sniff(b)?) else {
        return compare_bytes(a, b);
    };
    if kind_a.cpio && kind_b.cpio {
        let entries_a = match cpio_entries(open(a, kind_a.gzip)?) {
            Ok(e) => e,
            Err(reason) => return Ok(Some(Difference::Unreadable { side: 'a', reason })),
        };
        let entries_b = match cpio_entries(open(b, kind_b.gzip)?) {
            Ok(e) => e,
            Err(reason) => return Ok(Some(Difference::Unreadable { side: 'b', reason })),
        };
        let changes = diff_entries(&entries_a, &entries_b);
        if !changes.is_empty() {
            return Ok(Some(Difference::Entries(changes)));
        }
        let order = |e: &[(String, Summary)]| e.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
        if order(&entries_a) != order(&entries_b) {
            return Ok(Some(Difference::Order));
        }
    }
    if !(kind_a.gzip && kind_b.gzip) {
        return compare_bytes(a, b);
    }
    // The compressed bytes are read only when the contents are equal.
    if let Some(decompressed) = compare_streams(open(a, true)?, open(b, true)?, true) {
        return Ok(Some(decompressed));
    }
    Ok(match compare_bytes(a, b)? {
        Some(Difference::Blocks { first, .. }) => Some(Difference::Compression { first }),
        other => other,
    })
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io { op: "read", path: path.to_path_buf(), source }
}

/// What a file's first bytes say it is.
#[derive(Debug, Clone, Copy)]
struct Kind {
    gzip: bool,
    cpio: bool,
}

/// Reads the first bytes of `path` (decompressed if gzip) to tell gzip and cpio apart;
/// `None` for an empty file.
fn sniff(path: &Path) -> Result<Option<Kind>> {
    let mut head = [0u8; 6];
    let mut file = open(path, false)?;
    let n = read_up_to(&mut file, &mut head).map_err(io_err(path))?;
    if n == 0 {
        return Ok(None);
    }
    let gzip = n >= 2 && head[..2] == [0x1f, 0x8b];
    let mut inner = [0u8; 6];
    let m = if gzip {
        // A stream that is not valid gzip is compared by its bytes.
        read_up_to(&mut open(path, true)?, &mut inner).unwrap_or(0)
    } else {
        inner = head;
        n
    };
    let cpio = m == 6 && (&inner == b"070701" || &inner == b"070702");
    Ok(Some(Kind { gzip, cpio }))
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn open(path: &Path, gunzip: bool) -> Result<Box<dyn Read>> {
    let (_, file) = crate::open_file(path).map_err(io_err(path))?;
    let buffered = BufReader::with_capacity(1 << 20, file);
    Ok(if gunzip {
        Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    })
}

fn compare_bytes(a: &Path, b: &Path) -> Result<Option<Difference>> {
    Ok(compare_streams(open(a, false)?, open(b, false)?, false))
}

/// Compares two streams by [`BLOCK`]-byte blocks; `None` when equal. A read error (a corrupt
/// gzip stream, say) makes its side [`Difference::Unreadable`], with the offset reached.
pub fn compare_streams(
    mut a: impl Read,
    mut b: impl Read,
    decompressed: bool,
) -> Option<Difference> {
    let block = BLOCK as usize;
    let (mut buf_a, mut buf_b) = (vec![0u8; block], vec![0u8; block]);
    let (mut len_a, mut len_b, mut blocks) = (0u64, 0u64, 0u64);
    let mut first = None;
    let unreadable = |side: char, at: u64, e: io::Error| {
        let what = if decompressed { "decompressed byte" } else { "byte" };
        Some(Difference::Unreadable { side, reason: format!("at {what} {at}: {e}") })
    };
    loop {
        let na = match read_up_to(&mut a, &mut buf_a) {
            Ok(n) => n,
            Err(e) => return unreadable('a', len_a, e),
        };
        let nb = match read_up_to(&mut b, &mut buf_b) {
            Ok(n) => n,
            Err(e) => return unreadable('b', len_b, e),
        };
        if na == 0 && nb == 0 {
            break;
        }
        if buf_a[..na] != buf_b[..nb] {
            blocks += 1;
            if first.is_none() {
                let at = buf_a[..na].iter().zip(&buf_b[..nb]).position(|(x, y)| x != y);
                first = Some(len_a + at.unwrap_or(na.min(nb)) as u64);
            }
        }
        len_a += na as u64;
        len_b += nb as u64;
    }
    first.map(|first| Difference::Blocks { len_a, len_b, first, blocks, decompressed })
}

/// What is compared of one cpio entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Summary {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    size: u32,
    rdev: (u32, u32),
    /// The data's SHA-256, or a symlink's target.
    content: String,
}

/// The entries of a cpio archive in archive order, with the SHA-256 of each one's data.
fn cpio_entries(input: impl Read) -> std::result::Result<Vec<(String, Summary)>, String> {
    let mut reader = cpio::Reader::new(input);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while let Some(mut entry) = reader.next_entry().map_err(|e| e.to_string())? {
        let h = entry.header().clone();
        let kind = match h.file_type() {
            Some(FileType::Regular) => "file",
            Some(FileType::Directory) => "directory",
            Some(FileType::Symlink) => "symlink",
            Some(FileType::CharDevice) => "char device",
            Some(FileType::BlockDevice) => "block device",
            Some(FileType::Fifo) => "fifo",
            Some(FileType::Socket) => "socket",
            None => "unknown",
        };
        let content = if h.file_type() == Some(FileType::Symlink) {
            entry.read_symlink_target().map_err(|e| e.to_string())?
        } else {
            let mut hasher = Sha256::new();
            loop {
                let n = entry.read(&mut buf).map_err(|e| match cpio::Error::from_io_error(e) {
                    Ok(ours) => ours.to_string(),
                    Err(other) => other.to_string(),
                })?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            hex(&hasher.finalize())
        };
        let summary = Summary {
            kind,
            mode: h.permissions(),
            uid: h.uid,
            gid: h.gid,
            nlink: h.nlink,
            mtime: h.mtime,
            size: h.file_size,
            rdev: (h.rdev_major, h.rdev_minor),
            content,
        };
        out.push((h.name, summary));
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The entries that differ between two archives, in path order.
fn diff_entries(a: &[(String, Summary)], b: &[(String, Summary)]) -> Vec<EntryChange> {
    let map_a: BTreeMap<&str, &Summary> = a.iter().map(|(p, s)| (p.as_str(), s)).collect();
    let map_b: BTreeMap<&str, &Summary> = b.iter().map(|(p, s)| (p.as_str(), s)).collect();
    let mut paths: Vec<&str> = map_a.keys().chain(map_b.keys()).copied().collect();
    paths.sort_unstable();
    paths.dedup();
    let mut out = Vec::new();
    for path in paths {
        let change = match (map_a.get(path), map_b.get(path)) {
            (Some(_), None) => Change::Removed,
            (None, Some(_)) => Change::Added,
            (Some(x), Some(y)) => {
                let fields = summary_fields(x, y);
                if fields.is_empty() {
                    continue;
                }
                Change::Fields(fields)
            }
            (None, None) => continue,
        };
        out.push(EntryChange { path: path.to_owned(), change });
    }
    out
}

fn summary_fields(x: &Summary, y: &Summary) -> Vec<Field> {
    let mut fields = Vec::new();
    let mut field = |name: &'static str, a: String, b: String| {
        if a != b {
            fields.push(Field { name, a, b });
        }
    };
    field("type", x.kind.into(), y.kind.into());
    field("mode", format!("{:04o}", x.mode), format!("{:04o}", y.mode));
    field("uid", x.uid.to_string(), y.uid.to_string());
    field("gid", x.gid.to_string(), y.gid.to_string());
    field("nlink", x.nlink.to_string(), y.nlink.to_string());
    field("mtime", x.mtime.to_string(), y.mtime.to_string());
    field("size", x.size.to_string(), y.size.to_string());
    field("rdev", format!("{}:{}", x.rdev.0, x.rdev.1), format!("{}:{}", y.rdev.0, y.rdev.1));
    let content = if x.kind == "symlink" && y.kind == "symlink" { "target" } else { "sha256" };
    field(content, x.content.clone(), y.content.clone());
    fields
}

/// The differing values of two JSON texts; when they are equal as JSON but not as bytes (key
/// order, spacing), their differing blocks: a release is compared byte for byte.
fn json_or_bytes(a: &[u8], b: &[u8]) -> Option<Difference> {
    json_difference(a, b).or_else(|| compare_streams(a, b, false))
}

/// The differing values of two JSON texts; `None` when they are equal as JSON.
fn json_difference(a: &[u8], b: &[u8]) -> Option<Difference> {
    let parse = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes);
    let (va, vb) = match (parse(a), parse(b)) {
        (Ok(va), Ok(vb)) => (va, vb),
        (Err(e), _) => return Some(Difference::Unreadable { side: 'a', reason: e.to_string() }),
        (_, Err(e)) => return Some(Difference::Unreadable { side: 'b', reason: e.to_string() }),
    };
    let mut changes = Vec::new();
    let mut total = 0;
    json_walk(String::new(), Some(&va), Some(&vb), &mut changes, &mut total);
    (total > 0).then_some(Difference::Json { changes, total })
}

fn json_walk(
    path: String,
    a: Option<&serde_json::Value>,
    b: Option<&serde_json::Value>,
    changes: &mut Vec<JsonChange>,
    total: &mut usize,
) {
    use serde_json::Value;
    let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().collect();
            keys.extend(y.keys().filter(|k| !x.contains_key(*k)));
            for key in keys {
                json_walk(join(key), x.get(key), y.get(key), changes, total);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                json_walk(format!("{path}[{i}]"), x.get(i), y.get(i), changes, total);
            }
        }
        (x, y) if x == y => {}
        (x, y) => {
            *total += 1;
            if changes.len() < MAX_JSON_CHANGES {
                let show = |v: Option<&Value>| v.map(Value::to_string);
                changes.push(JsonChange { path, a: show(x), b: show(y) });
            }
        }
    }
}

/// Reads a release's `sha256sum.txt` into path → digest.
fn read_index(dir: &Path) -> Result<BTreeMap<String, String>> {
    let path = dir.join(SHA256SUM);
    let text = crate::hashed::read_file(&path, MAX_INDEX)?;
    index_from(&path, &text)
}

/// Parses `text`, the contents of the `sha256sum.txt` at `path`, into path → digest (lowercase
/// hex). Paths must be relative, without `..`, and listed once; an error names `path`, the line
/// and what was expected.
pub fn index_from(path: &Path, text: &[u8]) -> Result<BTreeMap<String, String>> {
    parse_index(text).map_err(|(line, expected)| Error::Io {
        op: "parse",
        path: path.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line {line}: expected {expected}"),
        ),
    })
}

/// Parses `sha256sum` output (`<64 hex>  <path>` or `<64 hex> *<path>`). Paths must be
/// relative, without `..`, and listed once; the error is the line number and what was expected.
fn parse_index(
    text: &[u8],
) -> std::result::Result<BTreeMap<String, String>, (usize, &'static str)> {
    let text = std::str::from_utf8(text).map_err(|_| (0, "UTF-8 text"))?;
    let mut out = BTreeMap::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.is_empty() {
            continue;
        }
        let (digest, rest) = line.split_at_checked(64).ok_or((n, "a 64-digit SHA-256"))?;
        if !digest.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err((n, "a 64-digit SHA-256"));
        }
        let path = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or((n, "two spaces after the digest"))?;
        let p = Path::new(path);
        let safe = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err((n, "a relative path without '..'"));
        }
        if seen.insert(path.to_owned(), n).is_some() {
            return Err((n, "each path listed once"));
        }
        out.insert(path.to_owned(), digest.to_ascii_lowercase());
    }
    Ok(out)
}

fn first_word(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).split_whitespace().next().unwrap_or_default().to_owned()
}

/// Reads a small file; `None` if it does not exist.
fn read_small(path: &Path) -> Result<Option<Vec<u8>>> {
    match crate::hashed::read_file(path, MAX_INDEX) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
