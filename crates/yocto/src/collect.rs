//! Collection: the artifacts of a bitbake build, from the machines' deploy directories into
//! `<out>/<machine>/`, with the post-processing steps and the manifest.
//!
//! For each selected machine, each artifact of the config names a stable link in the deploy
//! directory (`<build>/<machine.deploy_dir>/<artifact.deploy>`); it is resolved through its
//! symbolic links and must end at a regular file inside the deploy directory. Timestamped file
//! names are never listed or globbed. Every problem of every artifact is found before anything
//! is written, and reported at once ([`Error::Unresolved`]).
//!
//! Then, in config order:
//! - `post = copy`: the file is copied to `<out>/<machine>/<name>`;
//! - `post = iso`: the cpio is copied, and `<stem>.iso` is made from the copy with the upstream
//!   options ([`iso_options`]);
//! - `post = gcp-tar`: `<name>.tar.gz` holding `disk.raw` is made from the wic
//!   ([`gcp_options`]); the raw disk itself is not copied (upstream does not publish it);
//! - `post = sbom`: once the machine's other artifacts are written, the image SBOM must list
//!   every image file of the machine deployed under its link name with the SHA-256 collected
//!   (the copy's, or for a wic the disk's, hashed as the tarball writer read it)
//!   ([`crate::sbom`]); only then is it copied;
//! - finally `<out>/encryptedfs.qcow2`, the empty 300G disk the guest encrypts.
//!
//! Every file is written atomically by `secretvm-artifact`, which returns the size and SHA-256
//! of the bytes it wrote; the manifest ([`crate::manifest`]) is made from those values. The
//! launch inputs (`ovmf.fd`, `bzImage`, `initramfs.cpio.gz`) are read into memory once, written
//! from that memory and measured from the same bytes.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use secretvm_artifact::hashed::{self, Written};
use secretvm_pack::{gcp, iso};

use crate::config::{Machine, Post};
use crate::manifest::{self, FileEntry, LaunchFiles, MachineReport};

/// `SOURCE_DATE_EPOCH` of the post-processed artifacts: 2000-01-01T00:00:00Z, the date the
/// upstream `cpio_to_iso.sh` gives xorriso.
pub const SOURCE_DATE_EPOCH: u64 = 946_684_800;

/// The empty encrypted-file-system disk, at the top of the output directory.
pub const ENCRYPTED_FS: &str = "encryptedfs.qcow2";

/// Its virtual size: 300 GiB, as upstream's `qemu-img create -f qcow2 ... 300G`.
pub const ENCRYPTED_FS_SIZE: u64 = 300 << 30;

/// The largest launch input (firmware, kernel, initramfs) read into memory to be measured.
pub const MAX_LAUNCH_INPUT: u64 = 1 << 30;

/// The ISO options equivalent to upstream's `cpio_to_iso.sh` (xorriso 1.5.4 with
/// `SOURCE_DATE_EPOCH` 2000-01-01, `-volume_date all_file_dates`, `-uid 0 -gid 0`, no `-V`):
/// what `secretvm pack iso --owner-root --all-times-epoch --xorriso-compat` writes with
/// `SOURCE_DATE_EPOCH=946684800`.
pub fn iso_options() -> iso::Options {
    iso::Options {
        epoch: SOURCE_DATE_EPOCH,
        all_times_epoch: true,
        owner_root: true,
        // xorriso's default volume id; the upstream script gives none.
        volume_id: "ISOIMAGE".to_owned(),
        preparer_id: "XORRISO".to_owned(),
        directory_nlink_one: true,
        pad_blocks: 150,
        allow_long_names: false,
    }
}

/// The GCP tarball options: `disk.raw`, mtime [`SOURCE_DATE_EPOCH`], gzip level 6 (gzip's and
/// `tar czf`'s default), sparse (the defaults of `secretvm pack gcp-tar`). Upstream's tarball
/// takes the time of a fresh copy and is never reproducible, so only `disk.raw` can be compared.
pub fn gcp_options() -> gcp::Options {
    gcp::Options { mtime: SOURCE_DATE_EPOCH, ..gcp::Options::default() }
}

/// Why an artifact could not be resolved in its deploy directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Nothing at the expected path.
    Missing,
    /// The machine's deploy directory itself does not exist.
    NoDeployDir,
    /// The link resolves outside the deploy directory.
    Escapes {
        /// Where it resolves to.
        target: PathBuf,
    },
    /// The link resolves to something that is not a regular file.
    NotAFile {
        /// Where it resolves to.
        target: PathBuf,
    },
    /// The link points at nothing.
    Dangling {
        /// The link's target, as written in the link.
        target: PathBuf,
    },
    /// The link could not be followed (a looping link, a permission error).
    Unreadable {
        /// The operating system's message.
        message: String,
    },
}

/// One artifact that cannot be collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The machine (multiconfig) name.
    pub machine: String,
    /// The artifact's name under `<out>/<machine>/`.
    pub artifact: String,
    /// The expected deploy path (the stable link).
    pub path: PathBuf,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (machine, artifact, path) = (&self.machine, &self.artifact, self.path.display());
        write!(f, "{machine}: {artifact}: expected {path}")?;
        match &self.kind {
            ProblemKind::Missing => write!(f, ", which does not exist"),
            ProblemKind::NoDeployDir => write!(
                f,
                ", but the deploy directory {} does not exist (was mc:{machine} built?)",
                self.path.parent().unwrap_or(&self.path).display()
            ),
            ProblemKind::Escapes { target } => write!(
                f,
                ", which resolves to {}, outside the deploy directory; expected a link to a \
                 file inside it",
                target.display()
            ),
            ProblemKind::NotAFile { target } => {
                write!(f, ", which resolves to {}, not a regular file", target.display())
            }
            ProblemKind::Dangling { target } => {
                write!(f, ", a link to {}, which does not exist", target.display())
            }
            ProblemKind::Unreadable { message } => {
                write!(f, ", which cannot be followed: {message}")
            }
        }
    }
}

/// Why collection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Some artifacts cannot be found or are refused; every one is listed. Nothing was written.
    #[error(
        "{} artifact(s) cannot be collected:\n{}",
        .0.len(),
        .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
    )]
    Unresolved(Vec<Problem>),
    /// A directory could not be created.
    #[error("cannot create the directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// An output could not be written (or its input read).
    #[error("cannot write {path}")]
    Write {
        /// The output path, relative to the output directory.
        path: String,
        /// Why.
        #[source]
        source: Box<secretvm_artifact::Error>,
    },
    /// The manifest could not be rendered as JSON.
    #[error("cannot render manifest.json")]
    Json(#[source] serde_json::Error),
    /// An image SBOM is not SPDX 3.0, or does not describe the image collected beside it.
    #[error("{path}: refused as {}", image.as_ref().map_or("an image SBOM".to_owned(), |i| format!("the SBOM of {i}")))]
    Sbom {
        /// The SBOM, relative to the output directory.
        path: String,
        /// The image artifact it was checked against, when the check was against one.
        image: Option<String>,
        /// Why.
        #[source]
        source: crate::sbom::Error,
    },
    /// The expected measurements of a machine could not be computed from its files.
    #[error("{machine}: cannot compute the expected measurements")]
    Measure {
        /// The machine.
        machine: String,
        /// Why.
        #[source]
        source: secretvm_measure::Error,
    },
}

/// `Result` of collection.
pub type Result<T> = std::result::Result<T, Error>;

/// What collection wrote.
#[derive(Debug, Clone)]
pub struct Collected {
    /// Every file written, with its path relative to the output directory (`/`-separated), in
    /// the order written.
    pub files: Vec<FileEntry>,
    /// Per selected machine, in config order: the expected measurements.
    pub machines: Vec<MachineReport>,
}

/// An artifact resolved to its file in the deploy directory.
struct Resolved<'a> {
    machine: &'a Machine,
    name: &'a str,
    deploy: &'a str,
    post: Post,
    source: PathBuf,
}

/// The largest image SBOM read.
pub const MAX_SBOM: u64 = 1 << 30;

/// An image file collected on a machine, for its SBOM's check.
struct ImageFile<'a> {
    /// The artifact's name.
    name: &'a str,
    /// Its stable deploy link.
    deploy: &'a str,
    /// The file the link resolved to (its name is the one the SBOM records).
    source: &'a Path,
    /// The SHA-256 of the bytes collected (for a wic, of the disk the tarball was made from,
    /// hashed as the tarball writer read it).
    sha256: [u8; 32],
}

/// Resolves the deploy link `name` in `deploy_dir` (canonical): through its symbolic links, to a
/// regular file inside `deploy_dir`.
fn resolve(deploy_dir: Option<&Path>, link: &Path) -> std::result::Result<PathBuf, ProblemKind> {
    let Some(deploy_dir) = deploy_dir else { return Err(ProblemKind::NoDeployDir) };
    let unreadable = |e: io::Error| ProblemKind::Unreadable { message: e.to_string() };
    match fs::symlink_metadata(link) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ProblemKind::Missing),
        Err(e) => return Err(unreadable(e)),
        Ok(_) => {}
    }
    let target = match fs::canonicalize(link) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let target = fs::read_link(link).map_err(unreadable)?;
            return Err(ProblemKind::Dangling { target });
        }
        other => other.map_err(unreadable)?,
    };
    if !target.starts_with(deploy_dir) {
        return Err(ProblemKind::Escapes { target });
    }
    match fs::metadata(&target) {
        Ok(meta) if meta.is_file() => Ok(target),
        Ok(_) => Err(ProblemKind::NotAFile { target }),
        Err(e) => Err(ProblemKind::Unreadable { message: e.to_string() }),
    }
}

/// Collects the artifacts of `machines` from the bitbake build directory `build_dir` into
/// `out`, makes the ISOs, GCP tarballs and the encrypted-fs disk, and computes each machine's
/// expected measurements. `on_write` is called with each output's relative path before it is
/// written. The manifest files are written by [`write_manifest`].
pub fn collect(
    machines: &[&Machine],
    build_dir: &Path,
    out: &Path,
    on_write: &mut dyn FnMut(&str),
) -> Result<Collected> {
    let mut problems = Vec::new();
    let mut resolved = Vec::new();
    for &machine in machines {
        let deploy_dir = build_dir.join(&machine.deploy_dir);
        let canonical = fs::canonicalize(&deploy_dir).ok().filter(|d| d.is_dir());
        for artifact in &machine.artifacts {
            let link = deploy_dir.join(&artifact.deploy);
            match resolve(canonical.as_deref(), &link) {
                Ok(source) => resolved.push(Resolved {
                    machine,
                    name: &artifact.name,
                    deploy: &artifact.deploy,
                    post: artifact.post,
                    source,
                }),
                Err(kind) => problems.push(Problem {
                    machine: machine.name.clone(),
                    artifact: artifact.name.clone(),
                    path: link,
                    kind,
                }),
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::Unresolved(problems));
    }
    // An earlier run's manifest describes files this run is about to replace: it goes before
    // the first write, so a run that fails or is stopped half-way leaves no manifest beside a
    // mix of old and new files. [`write_manifest`] writes the new one last; it goes first.
    for name in manifest::FILES.iter().rev() {
        hashed::remove(&out.join(name)).map_err(write_error((*name).to_owned()))?;
    }

    let mut files = Vec::new();
    let mut reports = Vec::new();
    for &machine in machines {
        let dir = out.join(&machine.name);
        fs::create_dir_all(&dir)
            .map_err(|source| Error::CreateDir { path: dir.clone(), source })?;
        let mut launch = LaunchInputs::default();
        let mut images = Vec::new();
        let mut sboms = Vec::new();
        for r in resolved.iter().filter(|r| std::ptr::eq(r.machine, machine)) {
            let rel = format!("{}/{}", machine.name, r.name);
            let dst = dir.join(r.name);
            let image =
                |sha256| ImageFile { name: r.name, deploy: r.deploy, source: &r.source, sha256 };
            match r.post {
                Post::Copy => {
                    let written = match launch.slot(r.name) {
                        Some(slot) => {
                            on_write(&rel);
                            let bytes = hashed::read_file(&r.source, MAX_LAUNCH_INPUT)
                                .map_err(write_error(rel.clone()))?;
                            let written = hashed::write_bytes(&dst, &bytes)
                                .map_err(write_error(rel.clone()))?;
                            *slot = Some(bytes);
                            written
                        }
                        None => copy(&r.source, &dst, &rel, on_write)?,
                    };
                    images.push(image(written.sha256));
                    files.push(entry(rel, written));
                }
                // Written once the machine's images are, and only if it describes them.
                Post::Sbom => sboms.push((r, rel, dst)),
                Post::Iso => {
                    let written = copy(&r.source, &dst, &rel, on_write)?;
                    images.push(image(written.sha256));
                    files.push(entry(rel, written));
                    let iso = Post::iso_name(r.name);
                    let iso_rel = format!("{}/{iso}", machine.name);
                    on_write(&iso_rel);
                    let (_, written) = secretvm_artifact::iso::write_iso_hashed(
                        &dst,
                        &iso_options(),
                        &dir.join(&iso),
                        &mut |_, _| {},
                    )
                    .map_err(write_error(iso_rel.clone()))?;
                    files.push(entry(iso_rel, written));
                }
                Post::GcpTar => {
                    let tar = Post::gcp_tar_name(r.name);
                    let tar_rel = format!("{}/{tar}", machine.name);
                    on_write(&tar_rel);
                    let hashed = secretvm_artifact::iso::write_gcp_tar_hashed(
                        &r.source,
                        &gcp_options(),
                        &dir.join(&tar),
                    )
                    .map_err(write_error(tar_rel.clone()))?;
                    images.push(image(hashed.disk_sha256));
                    files.push(entry(tar_rel, hashed.tarball));
                }
            }
        }
        for (r, rel, dst) in sboms {
            on_write(&rel);
            let bytes = hashed::read_file(&r.source, MAX_SBOM).map_err(write_error(rel.clone()))?;
            check_sbom(&machine.name, r.deploy, &rel, &bytes, &images)?;
            let written = hashed::write_bytes(&dst, &bytes).map_err(write_error(rel.clone()))?;
            files.push(entry(rel, written));
        }
        let expected = manifest::expected(&machine.name, &launch.files())
            .map_err(|source| Error::Measure { machine: machine.name.clone(), source })?;
        reports.push(MachineReport {
            name: machine.name.clone(),
            machine: machine.machine.clone(),
            expected,
        });
    }

    on_write(ENCRYPTED_FS);
    let mut image = Vec::new();
    secretvm_qcow2::write_empty_image(ENCRYPTED_FS_SIZE, &mut image).map_err(|source| {
        write_error(ENCRYPTED_FS.to_owned())(secretvm_artifact::Error::Qcow2 {
            path: out.join(ENCRYPTED_FS),
            source,
        })
    })?;
    let written = hashed::write_bytes(&out.join(ENCRYPTED_FS), &image)
        .map_err(write_error(ENCRYPTED_FS.to_owned()))?;
    files.push(entry(ENCRYPTED_FS.to_owned(), written));
    Ok(Collected { files, machines: reports })
}

/// What [`write_manifest`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSummary {
    /// The SHA-256 of `sha256sum.txt`, as written to `digest.txt`.
    pub digest: String,
}

/// Writes `sha256sum.txt`, `digest.txt` and `manifest.json` into `out`.
///
/// `git_revision`, `lock_sha256` (the SHA-256 of the lock file, when there is one) and
/// `complete` (see [`manifest::Inputs::complete`]) are recorded as given.
pub fn write_manifest(
    out: &Path,
    collected: &Collected,
    git_revision: Option<&str>,
    lock_sha256: Option<&str>,
    complete: bool,
) -> Result<ManifestSummary> {
    let sums = manifest::sha256sum_txt(&collected.files);
    let digest = manifest::digest_txt(&sums);
    let json = manifest::manifest_json(&manifest::Inputs {
        git_revision,
        lock_sha256,
        digest: digest.trim_end(),
        complete,
        files: &collected.files,
        machines: &collected.machines,
    })
    .map_err(Error::Json)?;
    for (name, text) in manifest::FILES.into_iter().zip([&sums, &digest, &json]) {
        hashed::write_bytes(&out.join(name), text.as_bytes())
            .map_err(write_error(name.to_owned()))?;
    }
    Ok(ManifestSummary { digest: digest.trim_end().to_owned() })
}

/// Checks the image SBOM `bytes` (collected as `rel`, deployed as `deploy`) against the image
/// files of its machine deployed under the same link name: each must be listed with the
/// SHA-256 of the bytes collected.
fn check_sbom(
    machine: &str,
    deploy: &str,
    rel: &str,
    bytes: &[u8],
    images: &[ImageFile<'_>],
) -> Result<()> {
    let sbom_error =
        |image: Option<String>| move |source| Error::Sbom { path: rel.to_owned(), image, source };
    let listed = crate::sbom::file_digests(bytes).map_err(sbom_error(None))?;
    for image in images.iter().filter(|i| Post::sbom_describes(deploy, i.deploy)) {
        let file = image.source.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        crate::sbom::check_image(&listed, &file, &hex::encode(image.sha256))
            .map_err(sbom_error(Some(format!("{machine}/{}", image.name))))?;
    }
    Ok(())
}

fn copy(src: &Path, dst: &Path, rel: &str, on_write: &mut dyn FnMut(&str)) -> Result<Written> {
    on_write(rel);
    hashed::copy_file(src, dst).map_err(write_error(rel.to_owned()))
}

fn write_error(path: String) -> impl FnOnce(secretvm_artifact::Error) -> Error {
    move |source| Error::Write { path, source: Box::new(source) }
}

fn entry(path: String, written: Written) -> FileEntry {
    FileEntry { path, len: written.len, sha256: secretvm_measure::Sha256Digest(written.sha256) }
}

/// The launch inputs of one machine, kept in memory to be measured.
#[derive(Default)]
struct LaunchInputs {
    firmware: Option<Vec<u8>>,
    kernel: Option<Vec<u8>>,
    initrd: Option<Vec<u8>>,
}

impl LaunchInputs {
    /// Where the artifact `name` goes, if it is a launch input (by its upstream name, which the
    /// start_vm scripts pass to QEMU).
    fn slot(&mut self, name: &str) -> Option<&mut Option<Vec<u8>>> {
        match name {
            manifest::FIRMWARE => Some(&mut self.firmware),
            manifest::KERNEL => Some(&mut self.kernel),
            manifest::INITRD => Some(&mut self.initrd),
            _ => None,
        }
    }

    fn files(&self) -> LaunchFiles<'_> {
        LaunchFiles {
            firmware: self.firmware.as_deref(),
            kernel: self.kernel.as_deref(),
            initrd: self.initrd.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests;
