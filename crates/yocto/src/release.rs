//! The published release: the files of a complete build under upstream's release names, in one
//! flat directory that a release workflow attests and uploads as it is.
//!
//! Upstream's release workflow renames each published artifact to
//! `<stem>-<tag>-<machine><extension>`, where the stem is the artifact's name up to its first
//! dot (`rootfs-prod.iso` of tdx at tag `v1.2.3` becomes `rootfs-prod-v1.2.3-tdx.iso`,
//! `bzImage` becomes `bzImage-v1.2.3-tdx`, `rootfs-dev.wic.tar.gz` of gcp-tdx becomes
//! `rootfs-dev-v1.2.3-gcp-tdx.wic.tar.gz`). It publishes the ISOs and GCP tarballs, not the
//! cpio archives they are made from nor the encrypted-fs disk: 16 files for the three machines
//! (see [`crate::config::Output::released`]). The images' SPDX SBOMs, which upstream did not
//! publish, are released under the same rule (`rootfs-prod.spdx.json` of tdx becomes
//! `rootfs-prod-v1.2.3-tdx.spdx.json`): 13 more.
//!
//! [`write_release`] copies them out of `artifacts/`, and each copy's SHA-256, computed from the
//! bytes it wrote, must equal what the build's `sha256sum.txt` lists, so a release never
//! publishes a file that changed after the build. It also refuses a partial build
//! (`--machine`/`--artifact`), whose `manifest.json` says `"complete": false`, and a
//! `manifest.json` whose `digest` is not the SHA-256 of that `sha256sum.txt`. Beside the files
//! it writes `sha256sum.txt` over the release names and the build's `manifest.json` as it is
//! (its git revision, lock hash and expected measurements; its files are matched by SHA-256).
//! Everything goes into a new directory next to the destination that is renamed to it only when
//! complete.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use secretvm_artifact::compare::index_from;
use secretvm_artifact::hashed;

use crate::config::Config;
use crate::manifest::{self, FileEntry};

/// The longest tag accepted.
const MAX_TAG: usize = 100;

/// The largest `manifest.json` or `sha256sum.txt` read.
const MAX_LIST: u64 = 64 << 20;

/// One published file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFile {
    /// Its path in the build's output directory (`tdx/rootfs-prod.iso`).
    pub source: String,
    /// Its release name (`rootfs-prod-v1.2.3-tdx.iso`).
    pub name: String,
}

/// Why a release cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tag cannot be part of a file name.
    #[error(
        "the tag {0:?} cannot name release files: expected 1 to {MAX_TAG} letters, digits, '.', \
         '-', '_' or '+', starting with a letter or digit (such as v1.2.3)"
    )]
    Tag(String),
    /// The build left part of the release out.
    #[error(
        "{manifest} says \"complete\": false: the build was limited with --machine or \
         --artifact; a release needs every machine and artifact of the config, so build \
         without them"
    )]
    Partial {
        /// The build's manifest.
        manifest: PathBuf,
    },
    /// The build's manifest is not what `secretvm build` writes.
    #[error("{manifest}: {message}")]
    Manifest {
        /// The build's manifest.
        manifest: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file to publish is not listed in the build's `sha256sum.txt`.
    #[error("{path} is not listed in {index}; expected every released file there")]
    Unlisted {
        /// Its path in the build's output directory.
        path: String,
        /// The build's `sha256sum.txt`.
        index: PathBuf,
    },
    /// A file changed after the build listed it.
    #[error(
        "{path} has SHA-256 {found}, but the build's sha256sum.txt lists {expected}: it \
         changed after the build; nothing was released"
    )]
    Changed {
        /// Its path in the build's output directory.
        path: String,
        /// The listed digest.
        expected: String,
        /// The digest of its bytes now.
        found: String,
    },
    /// The destination exists already.
    #[error("{0} exists; a release goes into a new directory")]
    Exists(PathBuf),
    /// Reading, writing or renaming failed.
    #[error(transparent)]
    Io(#[from] secretvm_artifact::Error),
    /// The staging directory could not be made or renamed.
    #[error("cannot {op} {path}")]
    Dir {
        /// What was being done.
        op: &'static str,
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Checks that `tag` can be part of a file name: letters, digits, `.`, `-`, `_` and `+`,
/// starting with a letter or a digit, at most 100 bytes.
pub fn check_tag(tag: &str) -> Result<(), Error> {
    let allowed = |c: u8| c.is_ascii_alphanumeric() || b".-_+".contains(&c);
    let ok = tag.len() <= MAX_TAG
        && tag.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && tag.bytes().all(allowed);
    if ok { Ok(()) } else { Err(Error::Tag(tag.to_owned())) }
}

/// The release name of `file` (an output of `machine`) at `tag`: `<stem>-<tag>-<machine><rest>`,
/// where the stem ends at the first dot.
pub fn release_name(machine: &str, file: &str, tag: &str) -> String {
    let (stem, rest) = file.find('.').map_or((file, ""), |dot| file.split_at(dot));
    format!("{stem}-{tag}-{machine}{rest}")
}

/// The files a release of `config` publishes at `tag`, in config order.
pub fn release_files(config: &Config, tag: &str) -> Result<Vec<ReleaseFile>, Error> {
    check_tag(tag)?;
    let mut files = Vec::new();
    for machine in &config.machines {
        for artifact in &machine.artifacts {
            for output in artifact.outputs().into_iter().filter(|o| o.released) {
                files.push(ReleaseFile {
                    source: format!("{}/{}", machine.name, output.file),
                    name: release_name(&machine.name, &output.file, tag),
                });
            }
        }
    }
    Ok(files)
}

/// Writes the release of the build in `artifacts` (what `secretvm build` wrote for `config`)
/// at `tag` into the new directory `out`, and returns the published files with their sizes and
/// digests, by release name.
pub fn write_release(
    config: &Config,
    artifacts: &Path,
    tag: &str,
    out: &Path,
) -> Result<Vec<FileEntry>, Error> {
    let files = release_files(config, tag)?;
    if fs::symlink_metadata(out).is_ok() {
        return Err(Error::Exists(out.to_path_buf()));
    }
    let manifest_path = artifacts.join(manifest::MANIFEST);
    let manifest_bytes = hashed::read_file(&manifest_path, MAX_LIST)?;
    let index_path = artifacts.join(manifest::SHA256SUM);
    let index_bytes = hashed::read_file(&index_path, MAX_LIST)?;
    check_manifest(&manifest_path, &manifest_bytes, &index_bytes)?;
    let listed = index_from(&index_path, &index_bytes)?;

    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Removed on any error; renamed to `out` once everything is in it.
    let staging =
        tempfile::Builder::new().prefix(".secretvm-release-").tempdir_in(parent).map_err(
            |source| Error::Dir { op: "create a directory in", path: parent.to_path_buf(), source },
        )?;
    let mut entries = Vec::with_capacity(files.len());
    for file in &files {
        let expected = listed.get(&file.source).ok_or_else(|| Error::Unlisted {
            path: file.source.clone(),
            index: index_path.clone(),
        })?;
        let written =
            hashed::copy_file(&artifacts.join(&file.source), &staging.path().join(&file.name))?;
        let sha256 = secretvm_measure::Sha256Digest(written.sha256);
        let found = sha256.to_string();
        if &found != expected {
            return Err(Error::Changed {
                path: file.source.clone(),
                expected: expected.clone(),
                found,
            });
        }
        entries.push(FileEntry { path: file.name.clone(), len: written.len, sha256 });
    }
    let sums = manifest::sha256sum_txt(&entries);
    hashed::write_bytes(&staging.path().join(manifest::SHA256SUM), sums.as_bytes())?;
    hashed::write_bytes(&staging.path().join(manifest::MANIFEST), &manifest_bytes)?;
    let staged = staging.keep();
    fs::rename(&staged, out).map_err(|e| {
        let _ = fs::remove_dir_all(&staged);
        Error::Dir { op: "rename the release into", path: out.to_path_buf(), source: e }
    })?;
    Ok(entries)
}

/// Requires the build's manifest to say `"complete": true` and to name, as its `digest`, the
/// SHA-256 of the build's `sha256sum.txt` (`index`), so the manifest published is the one of
/// the files published.
fn check_manifest(path: &Path, bytes: &[u8], index: &[u8]) -> Result<(), Error> {
    let bad = |message: String| Error::Manifest { manifest: path.to_path_buf(), message };
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    match json.get("complete") {
        Some(serde_json::Value::Bool(true)) => {}
        Some(serde_json::Value::Bool(false)) => {
            return Err(Error::Partial { manifest: path.to_path_buf() });
        }
        _ => return Err(bad("expected a boolean \"complete\", as secretvm build writes".into())),
    }
    let digest = secretvm_measure::sha256(index).to_string();
    match json.get("digest").and_then(serde_json::Value::as_str) {
        Some(listed) if listed == digest => Ok(()),
        listed => Err(bad(format!(
            "its digest is {listed:?}, but the sha256sum.txt beside it has SHA-256 {digest}: \
             expected the manifest of the files listed there"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's release names, as its release workflow writes them (`<name>-<tag>-<machine>`
    /// with the extension kept), for tag v1.2.3.
    const UPSTREAM: [&str; 16] = [
        "bzImage-v1.2.3-tdx",
        "initramfs-v1.2.3-tdx.cpio.gz",
        "ovmf-v1.2.3-tdx.fd",
        "rootfs-dev-v1.2.3-tdx.iso",
        "rootfs-prod-v1.2.3-tdx.iso",
        "rootfs-gpu-dev-v1.2.3-tdx.iso",
        "rootfs-gpu-prod-v1.2.3-tdx.iso",
        "bzImage-v1.2.3-sev",
        "initramfs-v1.2.3-sev.cpio.gz",
        "ovmf-v1.2.3-sev.fd",
        "rootfs-dev-v1.2.3-sev.iso",
        "rootfs-prod-v1.2.3-sev.iso",
        "rootfs-gpu-dev-v1.2.3-sev.iso",
        "rootfs-gpu-prod-v1.2.3-sev.iso",
        "rootfs-dev-v1.2.3-gcp-tdx.wic.tar.gz",
        "rootfs-prod-v1.2.3-gcp-tdx.wic.tar.gz",
    ];

    /// The SBOMs: each image's, for every machine (gcp-tdx's initramfs is inside its disks).
    const SBOMS: [&str; 13] = [
        "initramfs-v1.2.3-tdx.spdx.json",
        "rootfs-dev-v1.2.3-tdx.spdx.json",
        "rootfs-prod-v1.2.3-tdx.spdx.json",
        "rootfs-gpu-dev-v1.2.3-tdx.spdx.json",
        "rootfs-gpu-prod-v1.2.3-tdx.spdx.json",
        "initramfs-v1.2.3-sev.spdx.json",
        "rootfs-dev-v1.2.3-sev.spdx.json",
        "rootfs-prod-v1.2.3-sev.spdx.json",
        "rootfs-gpu-dev-v1.2.3-sev.spdx.json",
        "rootfs-gpu-prod-v1.2.3-sev.spdx.json",
        "initramfs-v1.2.3-gcp-tdx.spdx.json",
        "rootfs-dev-v1.2.3-gcp-tdx.spdx.json",
        "rootfs-prod-v1.2.3-gcp-tdx.spdx.json",
    ];

    #[test]
    fn the_committed_config_releases_upstreams_sixteen_files_and_the_sboms() {
        let text = include_str!("../../../yocto/secretvm.toml");
        let config = crate::config::parse("yocto/secretvm.toml", text).unwrap();
        let files = release_files(&config, "v1.2.3").unwrap();
        let (sboms, others): (Vec<&ReleaseFile>, Vec<&ReleaseFile>) =
            files.iter().partition(|f| f.name.ends_with(".spdx.json"));
        let names =
            |files: &[&ReleaseFile]| files.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&others), UPSTREAM);
        assert_eq!(names(&sboms), SBOMS);
        assert_eq!(others[3].source, "tdx/rootfs-dev.iso");
        assert_eq!(others[15].source, "gcp-tdx/rootfs-prod.wic.tar.gz");
        assert_eq!(sboms[12].source, "gcp-tdx/rootfs-prod.spdx.json");
    }

    #[test]
    fn release_names_keep_every_extension_after_the_first_dot() {
        assert_eq!(release_name("tdx", "bzImage", "v2.0.0-rc.1"), "bzImage-v2.0.0-rc.1-tdx");
        assert_eq!(release_name("sev", "a.b.c", "t"), "a-t-sev.b.c");
    }

    #[test]
    fn tags_that_cannot_name_a_file_are_refused() {
        for tag in ["v1.2.3", "v1.2.3-rc.1", "1.0", "v1.0.0+build.5", "release_2"] {
            check_tag(tag).unwrap();
        }
        let long = "v".repeat(MAX_TAG + 1);
        for tag in ["", "-v1", ".v1", "../v1", "v1/2", "v 1", "v1\n", "v1*", "vé", long.as_str()] {
            let err = check_tag(tag).unwrap_err().to_string();
            assert!(err.contains("cannot name release files"), "{tag:?}: {err}");
        }
    }

    #[test]
    fn only_a_complete_build_with_its_own_manifest_is_released() {
        let path = Path::new("artifacts/manifest.json");
        let index =
            b"0000000000000000000000000000000000000000000000000000000000000000  tdx/bzImage\n";
        let digest = secretvm_measure::sha256(index).to_string();
        let manifest = |complete: &str, digest: &str| {
            format!(r#"{{"complete": {complete}, "digest": "{digest}"}}"#).into_bytes()
        };
        check_manifest(path, &manifest("true", &digest), index).unwrap();
        let partial =
            check_manifest(path, &manifest("false", &digest), index).unwrap_err().to_string();
        assert!(partial.contains("--machine or --artifact"), "{partial}");
        let other = check_manifest(path, &manifest("true", &"0".repeat(64)), index)
            .unwrap_err()
            .to_string();
        assert!(other.contains(&format!("has SHA-256 {digest}")), "{other}");
        for bad in [&br#"{"complete": "yes"}"#[..], b"{}", b"not json", br#"{"complete": true}"#] {
            let err = check_manifest(path, bad, index).unwrap_err().to_string();
            assert!(err.starts_with("artifacts/manifest.json: "), "{err}");
        }
    }
}
