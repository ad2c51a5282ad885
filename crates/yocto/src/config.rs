//! The build config (`yocto/secretvm.toml`): layer repositories, BBLAYERS order, builder
//! container, machines with their targets and artifacts, optional team caches.
//!
//! [`parse`] reads the TOML text and validates everything once; errors name the file, the key,
//! the line, what was found and what was expected. Order is meaning here: repositories, layers
//! (BBLAYERS order, which drives BBPATH and bbappend order), machines (BBMULTICONFIG order),
//! targets and artifacts keep the order of the file and are never sorted.

use std::collections::HashMap;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{
    COMMIT, Error, Result, is_commit, is_recipe_name, is_srcrev_variable, line_col, syntax,
};

/// The config format version this crate reads.
pub const FORMAT_VERSION: u32 = 1;

/// A validated build config. Produced only by [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The DISTRO, written into `conf/auto.conf` (never taken from the environment).
    pub distro: String,
    /// The directory the workspace is mounted at inside the builder; layer paths are absolute
    /// under it.
    pub workdir: String,
    /// Layer repositories, in the file's order.
    pub repos: Vec<Repo>,
    /// Layers in BBLAYERS order.
    pub layers: Vec<Layer>,
    /// The builder container.
    pub container: Container,
    /// Machines in BBMULTICONFIG order.
    pub machines: Vec<Machine>,
    /// Team caches; all `None` by default.
    pub cache: Cache,
    /// The SRCREVs a recipe of the layers leaves floating, which the lock must pin.
    pub floating: Vec<Floating>,
    /// The bitbake build directory, relative to the workspace: `build`, or another one
    /// ([`Config::with_build_dir`]).
    pub build_dir: String,
}

/// The bitbake build directory unless `--build-dir` names another.
pub const DEFAULT_BUILD_DIR: &str = "build";

/// A git repository that provides layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// The name layers refer to it by, and its key in the lock file.
    pub name: String,
    /// The clone URL.
    pub url: String,
    /// The branch the commit is on; `None` when upstream names none (the commit is fetched
    /// without a branch).
    pub branch: Option<String>,
    /// The exact commit, 40 hex digits.
    pub commit: String,
    /// The checkout directory, relative to the workspace root.
    pub path: String,
}

/// A SRCREV that a recipe of the layers follows from a branch head (AUTOREV), so that the lock
/// file must pin it: `secretvm lock --update --resolve` records the branch's current commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Floating {
    /// The recipe (PN), for example `linux-yocto-dev`.
    pub recipe: String,
    /// `SRCREV` or `SRCREV_<name>` (the `name=` of the recipe's SRC_URI entry).
    pub variable: String,
    /// The repository of that SRC_URI entry.
    pub url: String,
    /// The branch it follows.
    pub branch: String,
}

/// One entry of BBLAYERS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The repository the layer is in; `None` for a layer committed in this workspace.
    pub repo: Option<String>,
    /// The layer directory, relative to the repository checkout (`.` for its root), or to the
    /// workspace root for a layer of this workspace.
    pub path: String,
}

/// Which container engine runs bitbake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Docker if reachable, else podman.
    Auto,
    /// Docker.
    Docker,
    /// Podman (rootless, `--userns=keep-id`).
    Podman,
    /// No container: bitbake runs on the host (or inside a CI container).
    Native,
}

impl Engine {
    const NAMES: [&str; 4] = ["auto", "docker", "podman", "native"];

    fn from_name(name: &str) -> Option<Engine> {
        match name {
            "auto" => Some(Engine::Auto),
            "docker" => Some(Engine::Docker),
            "podman" => Some(Engine::Podman),
            "native" => Some(Engine::Native),
            _ => None,
        }
    }
}

/// The builder container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The default engine.
    pub engine: Engine,
    /// The Dockerfile, relative to the workspace root.
    pub dockerfile: String,
    /// The base image the Dockerfile starts from, pinned by digest (`name:tag@sha256:<64 hex>`).
    pub base_image: String,
}

/// What is done with an artifact after it is copied out of the deploy directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Post {
    /// Nothing: the copy is the artifact.
    Copy,
    /// A cpio root file system that is also turned into an ISO (`rootfs-dev.cpio` →
    /// `rootfs-dev.iso`).
    Iso,
    /// A wic disk image that becomes the GCP import tarball (`rootfs-dev.wic` →
    /// `rootfs-dev.wic.tar.gz`).
    GcpTar,
    /// An image's SPDX 3.0 SBOM (`rootfs-dev.spdx.json`, deployed as
    /// `<IMAGE_LINK_NAME>.spdx.json`): copied, and it must give each image file of the machine
    /// deployed under the same link name (`<IMAGE_LINK_NAME>.<type>`) the SHA-256 of the bytes
    /// collected ([`crate::sbom`]).
    Sbom,
}

impl Post {
    const NAMES: [&str; 4] = ["copy", "iso", "gcp-tar", "sbom"];

    /// The suffix of an SBOM's deploy link and name.
    pub const SBOM_SUFFIX: &str = ".spdx.json";

    /// Whether the SBOM deployed as `sbom_deploy` (`<L>.spdx.json`) describes the image file
    /// deployed as `image_deploy` (`<L>.<type>`), as poky names both after IMAGE_LINK_NAME.
    pub fn sbom_describes(sbom_deploy: &str, image_deploy: &str) -> bool {
        sbom_deploy.strip_suffix(Post::SBOM_SUFFIX).is_some_and(|link| {
            image_deploy.strip_prefix(link).is_some_and(|rest| {
                rest.len() > 1 && rest.starts_with('.') && rest != Post::SBOM_SUFFIX
            })
        })
    }

    /// The ISO made from the root file system cpio `name` (`rootfs-dev.cpio` → `rootfs-dev.iso`).
    pub fn iso_name(name: &str) -> String {
        format!("{}.iso", name.strip_suffix(".cpio").unwrap_or(name))
    }

    /// The GCP import tarball made from the disk image `name` (`rootfs-dev.wic` →
    /// `rootfs-dev.wic.tar.gz`).
    pub fn gcp_tar_name(name: &str) -> String {
        format!("{name}.tar.gz")
    }

    fn from_name(name: &str) -> Option<Post> {
        match name {
            "copy" => Some(Post::Copy),
            "iso" => Some(Post::Iso),
            "gcp-tar" => Some(Post::GcpTar),
            "sbom" => Some(Post::Sbom),
            _ => None,
        }
    }
}

/// One file collected from a machine's deploy directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The upstream file name under `artifacts/<machine>/`.
    pub name: String,
    /// The stable (link) name in the deploy directory; timestamped names are never used.
    pub deploy: String,
    /// The post-processing step.
    pub post: Post,
    /// The bitbake target (recipe or provider) that deploys it, without the `mc:` prefix.
    pub target: String,
}

/// One file that collection writes under `<out>/<machine>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Its name under `<out>/<machine>/`.
    pub file: String,
    /// Whether a release publishes it: every output but the root file system cpios, whose ISOs
    /// are published instead.
    pub released: bool,
}

impl Artifact {
    /// The files collection writes for this artifact, in the order it writes them.
    pub fn outputs(&self) -> Vec<Output> {
        let output = |file: String, released: bool| Output { file, released };
        match self.post {
            Post::Copy | Post::Sbom => vec![output(self.name.clone(), true)],
            Post::Iso => {
                vec![output(self.name.clone(), false), output(Post::iso_name(&self.name), true)]
            }
            Post::GcpTar => vec![output(Post::gcp_tar_name(&self.name), true)],
        }
    }
}

/// One multiconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The multiconfig name (`tdx`), also the `artifacts/` subdirectory.
    pub name: String,
    /// The MACHINE (`secret-vm-tdx`).
    pub machine: String,
    /// The TMPDIR, as bitbake reads it (`${TOPDIR}/tmp-tdx`).
    pub tmpdir: String,
    /// The deploy directory relative to the build directory (TMPDIR plus the distro's
    /// TCLIBCAPPEND, then `deploy/images/<MACHINE>`).
    pub deploy_dir: String,
    /// The artifacts, in order.
    pub artifacts: Vec<Artifact>,
}

/// Optional team caches (yocto.md §2.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cache {
    /// DL_DIR, a shared download directory.
    pub dl_dir: Option<String>,
    /// SSTATE_DIR, a shared sstate cache.
    pub sstate_dir: Option<String>,
    /// SSTATE_MIRRORS, for example `file://.* https://host/sstate/PATH;downloadfilename=PATH`.
    pub sstate_mirrors: Option<String>,
    /// BB_HASHSERVE (`host:port`, `unix://path` or `auto`); setting it also sets
    /// `BB_SIGNATURE_HANDLER = "OEEquivHash"`.
    pub hashserve: Option<String>,
    /// BB_HASHSERVE_UPSTREAM, only with `hashserve = "auto"`.
    pub hashserve_upstream: Option<String>,
    /// Signed sstate (`[cache.sstate_signatures]`): accept only sstate objects signed by one
    /// of these keys, and sign what this builder writes when it has a signing key.
    pub sstate_signatures: Option<SstateSignatures>,
}

/// Who may sign the sstate objects a build installs (`[cache.sstate_signatures]`).
///
/// The build keeps a GnuPG home of its own (`runner::signing`), made from scratch on every
/// run from `keys` (and `sign_key`), and checked to hold exactly the keys of `signers`; poky's
/// sstate code then installs an object only with a good signature by one of them
/// (`SSTATE_VERIFY_SIG`), and otherwise runs the task from source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SstateSignatures {
    /// The signers' OpenPGP public keys, armored or binary: a path relative to the workspace,
    /// or absolute.
    pub keys: String,
    /// The primary-key fingerprints of exactly the keys in `keys` (40 uppercase hex digits,
    /// OpenPGP v4), in the file's order.
    pub signers: Vec<String>,
    /// The secret key this builder signs the sstate it writes with (a file, relative to the
    /// workspace or absolute; one of `signers`, without a passphrase, since bitbake signs from
    /// its tasks in batch mode). `None`: this builder only verifies.
    pub sign_key: Option<String>,
}

impl Machine {
    /// The bitbake targets (without the `mc:<name>:` prefix): the artifacts' targets, each
    /// once, in the order of their first artifact.
    pub fn targets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for a in &self.artifacts {
            if !out.contains(&a.target.as_str()) {
                out.push(&a.target);
            }
        }
        out
    }
}

impl Cache {
    /// Whether SSTATE_MIRRORS names a mirror that is not a local path (`file://`). The value
    /// is pairs of a regular expression and a mirror URL; only the URLs are looked at.
    pub fn remote_sstate_mirror(&self) -> bool {
        let Some(mirrors) = &self.sstate_mirrors else { return false };
        mirrors.split_whitespace().skip(1).step_by(2).any(|url| !url.starts_with("file://"))
    }

    /// Whether the build itself, after every source was fetched, must still reach the
    /// network: a remote sstate mirror, a hash server over TCP or WebSocket (anything but
    /// `auto` and `unix://`), or an upstream hash server.
    pub fn needs_network(&self) -> bool {
        let remote_hashserve =
            self.hashserve.as_deref().is_some_and(|h| h != "auto" && !h.starts_with("unix://"));
        self.remote_sstate_mirror() || remote_hashserve || self.hashserve_upstream.is_some()
    }
}

impl Config {
    /// The machine called `name`, or [`Error::UnknownMachine`].
    pub fn machine(&self, name: &str) -> Result<&Machine> {
        self.machines.iter().find(|m| m.name == name).ok_or_else(|| Error::UnknownMachine {
            name: name.to_owned(),
            known: self.machines.iter().map(|m| m.name.clone()).collect(),
        })
    }

    /// The machines called `names`, in the config's order (as `--machine` selects them); all
    /// machines when `names` is empty.
    pub fn select_machines(&self, names: &[&str]) -> Result<Vec<&Machine>> {
        for name in names {
            self.machine(name)?;
        }
        Ok(self
            .machines
            .iter()
            .filter(|m| names.is_empty() || names.contains(&m.name.as_str()))
            .collect())
    }

    /// This config cut down to the machines called `machines` (all when empty), in the
    /// config's order, each with only the artifacts called `artifacts` (all when empty) and the
    /// targets those need, as `--machine` and `--artifact` select them. Everything downstream
    /// (BBMULTICONFIG, the bitbake targets, the collection) takes the result, so bitbake parses
    /// only the selected multiconfigs. Without `machines`, a machine that has none of
    /// `artifacts` is left out; a machine asked for by name must have at least one, and each
    /// artifact asked for must be in a selected machine. Equal to `self` when nothing is left
    /// out.
    pub fn select(&self, machines: &[&str], artifacts: &[&str]) -> Result<Config> {
        let named = self.select_machines(machines)?;
        let known = |list: &[&Machine]| -> Vec<String> {
            let mut names: Vec<String> = Vec::new();
            for a in list.iter().flat_map(|m| &m.artifacts) {
                if !names.contains(&a.name) {
                    names.push(a.name.clone());
                }
            }
            names
        };
        for name in artifacts {
            if !named.iter().any(|m| m.artifacts.iter().any(|a| a.name == *name)) {
                return Err(Error::UnknownArtifact {
                    name: (*name).to_owned(),
                    machines: named.iter().map(|m| m.name.clone()).collect(),
                    known: known(&named),
                });
            }
        }
        let mut selected = Vec::new();
        for &m in &named {
            let mut cut = m.clone();
            if !artifacts.is_empty() {
                cut.artifacts.retain(|a| artifacts.contains(&a.name.as_str()));
            }
            if cut.artifacts.is_empty() {
                if machines.is_empty() {
                    continue;
                }
                return Err(Error::NoSelectedArtifact {
                    machine: m.name.clone(),
                    asked: artifacts.iter().map(|a| (*a).to_owned()).collect(),
                    known: known(&[m]),
                });
            }
            selected.push(cut);
        }
        Ok(Config { machines: selected, ..self.clone() })
    }

    /// The config with bitbake's build directory at `dir` (relative to the workspace, inside
    /// it, so a container sees it through the workspace mount), as `--build-dir` asks.
    pub fn with_build_dir(&self, dir: &str) -> Result<Config> {
        let path = std::path::Path::new(dir);
        let ok = !dir.is_empty()
            && path.components().all(|c| matches!(c, std::path::Component::Normal(_)))
            && dir
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
        if !ok {
            return Err(Error::BadArgument {
                what: "--build-dir",
                found: dir.to_owned(),
                expected: "a relative path inside the workspace, of letters, digits, '-', '_', \
                           '.' and '/', without '..'",
            });
        }
        Ok(Config { build_dir: dir.trim_end_matches('/').to_owned(), ..self.clone() })
    }

    /// The config without the team's shared build state: no SSTATE_DIR, SSTATE_MIRRORS or
    /// hash server, so every task runs from source into the build directory's own, empty,
    /// sstate cache. A shared download directory (`dl_dir`) stays: each download is checked
    /// against its pinned checksum or commit. Nor are sstate signatures checked or made: the
    /// build takes nothing from a shared cache, and what it writes stays in its own. This is
    /// the second build of a reproducibility check.
    pub fn from_scratch(&self) -> Config {
        let cache = Cache { dl_dir: self.cache.dl_dir.clone(), ..Cache::default() };
        Config { cache, ..self.clone() }
    }

    /// The repository called `name`.
    pub fn repo(&self, name: &str) -> Option<&Repo> {
        self.repos.iter().find(|r| r.name == name)
    }

    /// The path of `layer` relative to the workspace root.
    pub fn layer_path(&self, layer: &Layer) -> String {
        match layer.repo.as_deref().and_then(|name| self.repo(name)) {
            Some(repo) if layer.path == "." => repo.path.clone(),
            Some(repo) => format!("{}/{}", repo.path, layer.path),
            None => layer.path.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    version: Spanned<u32>,
    distro: Spanned<String>,
    workdir: Spanned<String>,
    #[serde(default)]
    repo: Vec<RawRepo>,
    #[serde(default)]
    layer: Vec<RawLayer>,
    container: RawContainer,
    #[serde(default)]
    machine: Vec<RawMachine>,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    floating: Vec<RawFloating>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFloating {
    recipe: Spanned<String>,
    variable: Spanned<String>,
    url: Spanned<String>,
    branch: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepo {
    name: Spanned<String>,
    url: Spanned<String>,
    branch: Option<Spanned<String>>,
    commit: Spanned<String>,
    path: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    repo: Option<Spanned<String>>,
    path: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContainer {
    engine: Spanned<String>,
    dockerfile: Spanned<String>,
    base_image: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    name: Spanned<String>,
    machine: Spanned<String>,
    tmpdir: Spanned<String>,
    deploy_dir: Spanned<String>,
    #[serde(default)]
    artifact: Vec<RawArtifact>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArtifact {
    name: Spanned<String>,
    deploy: Spanned<String>,
    post: Spanned<String>,
    target: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCache {
    dl_dir: Option<Spanned<String>>,
    sstate_dir: Option<Spanned<String>>,
    sstate_mirrors: Option<Spanned<String>>,
    hashserve: Option<Spanned<String>>,
    hashserve_upstream: Option<Spanned<String>>,
    sstate_signatures: Option<RawSstateSignatures>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSstateSignatures {
    keys: Spanned<String>,
    signers: Spanned<Vec<Spanned<String>>>,
    sign_key: Option<Spanned<String>>,
}

/// What a signer must be written as.
const FINGERPRINT: &str = "an OpenPGP v4 fingerprint: 40 hex digits, as in the `fpr` line of \
                           `gpg --with-colons --fingerprint KEY`";

/// Builds errors for one file.
struct Check<'a> {
    file: &'a str,
    text: &'a str,
}

impl Check<'_> {
    fn line<T>(&self, v: &Spanned<T>) -> usize {
        line_col(self.text, v.span().start).0
    }

    fn invalid<T>(&self, v: &Spanned<T>, key: String, found: &str, expected: &str) -> Error {
        Error::Invalid {
            file: self.file.to_owned(),
            line: self.line(v),
            key,
            found: found.to_owned(),
            expected: expected.to_owned(),
        }
    }

    /// A value that is written into a bitbake configuration file between double quotes.
    fn conf_value(&self, v: &Spanned<String>, key: String) -> Result<String> {
        let s = v.get_ref();
        if s.is_empty() || s.contains(['"', '\\', '\n', '\r']) {
            return Err(self.invalid(
                v,
                key,
                s,
                "a non-empty value without double quotes, backslashes or line breaks",
            ));
        }
        Ok(s.clone())
    }

    /// A name: lowercase ASCII letters, digits, `-`, `_` and `.`, starting with a letter or digit.
    fn name(&self, v: &Spanned<String>, key: String) -> Result<String> {
        let s = v.get_ref();
        let ok = s.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        if !ok {
            return Err(self.invalid(
                v,
                key,
                s,
                "a name of lowercase letters, digits, '-', '_' and '.'",
            ));
        }
        Ok(s.clone())
    }

    /// A relative path without `.`/`..` or empty components.
    fn rel_path(&self, v: &Spanned<String>, key: String) -> Result<String> {
        let s = v.get_ref();
        let ok = !s.is_empty()
            && !s.starts_with('/')
            && s.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
            && !s.contains(['"', '\\', '\n', '\r', ' ']);
        if !ok {
            return Err(self.invalid(
                v,
                key,
                s,
                "a relative path without '.', '..', empty components, spaces or quotes",
            ));
        }
        Ok(s.clone())
    }

    /// A git URL: https://, git://, ssh:// or file:/// (a team's local mirror, and the tests'
    /// stand-in repositories), without whitespace.
    fn git_url(&self, v: &Spanned<String>, key: String) -> Result<String> {
        let url = v.get_ref();
        let schemes = ["https://", "git://", "ssh://", "file:///"];
        if !schemes.iter().any(|s| url.starts_with(s)) || url.contains(char::is_whitespace) {
            return Err(self.invalid(v, key, url, "an https://, git://, ssh:// or file:/// URL"));
        }
        Ok(url.clone())
    }

    fn unique(
        &self,
        seen: &mut HashMap<String, usize>,
        v: &Spanned<String>,
        key: &str,
    ) -> Result<()> {
        let line = self.line(v);
        if let Some(&first_line) = seen.get(v.get_ref()) {
            return Err(Error::Duplicate {
                file: self.file.to_owned(),
                line,
                key: key.to_owned(),
                name: v.get_ref().clone(),
                first_line,
            });
        }
        seen.insert(v.get_ref().clone(), line);
        Ok(())
    }

    fn optional(&self, v: Option<&Spanned<String>>, key: &str) -> Result<Option<String>> {
        v.map(|v| self.conf_value(v, format!("cache.{key}"))).transpose()
    }

    /// A file the build reads on the host: a relative path as [`Check::rel_path`] takes it, or
    /// an absolute one without `.`/`..` or empty components and without line breaks.
    fn file_path(&self, v: &Spanned<String>, key: String) -> Result<String> {
        let s = v.get_ref();
        if let Some(abs) = s.strip_prefix('/') {
            let ok = abs.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
                && !s.contains(['\n', '\r']);
            if !ok {
                return Err(self.invalid(
                    v,
                    key,
                    s,
                    "a path relative to the workspace, or an absolute one, without '.', '..' \
                     or empty components",
                ));
            }
            return Ok(s.clone());
        }
        self.rel_path(v, key)
    }

    fn sstate_signatures(&self, raw: &RawSstateSignatures) -> Result<SstateSignatures> {
        let key = |field: &str| format!("cache.sstate_signatures.{field}");
        let keys = self.file_path(&raw.keys, key("keys"))?;
        let sign_key =
            raw.sign_key.as_ref().map(|k| self.file_path(k, key("sign_key"))).transpose()?;
        let mut signers = Vec::new();
        let mut seen = HashMap::new();
        for (i, fpr) in raw.signers.get_ref().iter().enumerate() {
            let s = fpr.get_ref();
            if s.len() != 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(self.invalid(fpr, format!("{}[{i}]", key("signers")), s, FINGERPRINT));
            }
            let upper = Spanned::new(fpr.span(), s.to_ascii_uppercase());
            self.unique(&mut seen, &upper, "cache.sstate_signatures.signers")?;
            signers.push(upper.into_inner());
        }
        if signers.is_empty() {
            return Err(self.invalid(
                &raw.signers,
                key("signers"),
                "[]",
                "at least one signer's fingerprint",
            ));
        }
        Ok(SstateSignatures { keys, signers, sign_key })
    }
}

/// Parses and validates a build config. `file` names the text in error messages only.
pub fn parse(file: &str, text: &str) -> Result<Config> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| syntax(file, text, &e))?;
    let c = Check { file, text };

    if *raw.version.get_ref() != FORMAT_VERSION {
        return Err(c.invalid(
            &raw.version,
            "version".into(),
            &raw.version.get_ref().to_string(),
            "1",
        ));
    }
    let distro = c.name(&raw.distro, "distro".into())?;
    let workdir = raw.workdir.get_ref();
    if !workdir.starts_with('/') || workdir.len() < 2 || workdir.ends_with('/') {
        return Err(c.invalid(
            &raw.workdir,
            "workdir".into(),
            workdir,
            "an absolute path without a trailing '/'",
        ));
    }
    let workdir = c.conf_value(&raw.workdir, "workdir".into())?;

    let mut repos = Vec::new();
    let mut names = HashMap::new();
    let mut paths = HashMap::new();
    for (i, r) in raw.repo.iter().enumerate() {
        let key = |field: &str| format!("repo[{i}].{field}");
        let name = c.name(&r.name, key("name"))?;
        c.unique(&mut names, &r.name, "repo name")?;
        let url = c.git_url(&r.url, key("url"))?;
        let branch = match &r.branch {
            Some(b) => Some(c.conf_value(b, key("branch"))?),
            None => None,
        };
        if !is_commit(r.commit.get_ref()) {
            return Err(c.invalid(&r.commit, key("commit"), r.commit.get_ref(), COMMIT));
        }
        let path = c.rel_path(&r.path, key("path"))?;
        c.unique(&mut paths, &r.path, "repo path")?;
        repos.push(Repo { name, url, branch, commit: r.commit.get_ref().clone(), path });
    }
    if raw.repo.is_empty() {
        return Err(Error::Invalid {
            file: file.to_owned(),
            line: 1,
            key: "repo".into(),
            found: "nothing".into(),
            expected: "at least one [[repo]]".into(),
        });
    }

    let repo_names: Vec<String> = repos.iter().map(|r| r.name.clone()).collect();
    let mut layers = Vec::new();
    let mut seen_layers = HashMap::new();
    for (i, l) in raw.layer.iter().enumerate() {
        let repo = match &l.repo {
            Some(r) if !repo_names.contains(r.get_ref()) => {
                return Err(Error::Unknown {
                    file: file.to_owned(),
                    line: c.line(r),
                    key: format!("layer[{i}].repo"),
                    name: r.get_ref().clone(),
                    known: repo_names,
                });
            }
            Some(r) => Some(r.get_ref().clone()),
            None => None,
        };
        // "." is the repository's root, for repositories that are one layer.
        let path = if repo.is_some() && l.path.get_ref() == "." {
            ".".to_owned()
        } else {
            c.rel_path(&l.path, format!("layer[{i}].path"))?
        };
        let full = Spanned::new(
            l.path.span(),
            match &repo {
                Some(r) => format!("{r}:{path}"),
                None => path.clone(),
            },
        );
        c.unique(&mut seen_layers, &full, "layer")?;
        layers.push(Layer { repo, path });
    }
    for (r, raw_repo) in repos.iter().zip(&raw.repo) {
        if !layers.iter().any(|l| l.repo.as_deref() == Some(r.name.as_str())) {
            return Err(c.invalid(
                &raw_repo.name,
                "repo.name".into(),
                &r.name,
                "a repository that at least one [[layer]] uses",
            ));
        }
    }

    let engine_name = raw.container.engine.get_ref();
    let engine = Engine::from_name(engine_name).ok_or_else(|| {
        c.invalid(
            &raw.container.engine,
            "container.engine".into(),
            engine_name,
            &Engine::NAMES.join(", "),
        )
    })?;
    let dockerfile = c.rel_path(&raw.container.dockerfile, "container.dockerfile".into())?;
    let base = raw.container.base_image.get_ref();
    let pinned = base.split_once("@sha256:").is_some_and(|(name, digest)| {
        !name.is_empty()
            && digest.len() == 64
            && digest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if !pinned {
        return Err(c.invalid(
            &raw.container.base_image,
            "container.base_image".into(),
            base,
            "an image pinned by digest: name:tag@sha256:<64 lowercase hex digits>",
        ));
    }
    let container = Container { engine, dockerfile, base_image: base.clone() };

    let mut machines = Vec::new();
    let mut mnames = HashMap::new();
    let mut tmpdirs = HashMap::new();
    for (i, m) in raw.machine.iter().enumerate() {
        let key = |field: &str| format!("machine[{i}].{field}");
        let name = c.name(&m.name, key("name"))?;
        c.unique(&mut mnames, &m.name, "machine name")?;
        let machine = c.name(&m.machine, key("machine"))?;
        let tmpdir = c.conf_value(&m.tmpdir, key("tmpdir"))?;
        c.unique(&mut tmpdirs, &m.tmpdir, "machine tmpdir")?;
        let deploy_dir = c.rel_path(&m.deploy_dir, key("deploy_dir"))?;
        if m.artifact.is_empty() {
            return Err(c.invalid(&m.name, key("artifact"), "nothing", "at least one artifact"));
        }
        let mut artifacts = Vec::new();
        let mut anames = HashMap::new();
        for (j, a) in m.artifact.iter().enumerate() {
            let akey = |field: &str| format!("machine[{i}].artifact[{j}].{field}");
            let aname = a.name.get_ref();
            if aname.is_empty() || aname.contains(['/', '\\', '"', '\n']) || aname.starts_with('.')
            {
                return Err(c.invalid(&a.name, akey("name"), aname, "a plain file name"));
            }
            c.unique(&mut anames, &a.name, &format!("machine[{i}] artifact"))?;
            let deploy = c.rel_path(&a.deploy, akey("deploy"))?;
            let post_name = a.post.get_ref();
            let post = Post::from_name(post_name).ok_or_else(|| {
                c.invalid(&a.post, akey("post"), post_name, &Post::NAMES.join(", "))
            })?;
            let suffix = match post {
                Post::Copy => None,
                Post::Iso => Some(".cpio"),
                Post::GcpTar => Some(".wic"),
                Post::Sbom => Some(Post::SBOM_SUFFIX),
            };
            if let Some(suffix) = suffix.filter(|s| !aname.ends_with(s)) {
                return Err(c.invalid(
                    &a.name,
                    akey("name"),
                    aname,
                    &format!("a name ending in {suffix} for post = {post_name:?}"),
                ));
            }
            if post == Post::Sbom && !deploy.ends_with(Post::SBOM_SUFFIX) {
                return Err(c.invalid(
                    &a.deploy,
                    akey("deploy"),
                    &deploy,
                    &format!(
                        "a link ending in {} for post = \"sbom\" (<IMAGE_LINK_NAME>{0})",
                        Post::SBOM_SUFFIX
                    ),
                ));
            }
            let target = a.target.get_ref();
            if target.is_empty()
                || target.starts_with("mc:")
                || !target.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(c.invalid(
                    &a.target,
                    akey("target"),
                    target,
                    "a recipe or provider name without spaces and without an mc: prefix",
                ));
            }
            artifacts.push(Artifact { name: aname.clone(), deploy, post, target: target.clone() });
        }
        machines.push(Machine { name, machine, tmpdir, deploy_dir, artifacts });
    }
    if machines.is_empty() {
        return Err(Error::Invalid {
            file: file.to_owned(),
            line: 1,
            key: "machine".into(),
            found: "nothing".into(),
            expected: "at least one [[machine]]".into(),
        });
    }

    let rc = &raw.cache;
    let cache = Cache {
        dl_dir: c.optional(rc.dl_dir.as_ref(), "dl_dir")?,
        sstate_dir: c.optional(rc.sstate_dir.as_ref(), "sstate_dir")?,
        sstate_mirrors: c.optional(rc.sstate_mirrors.as_ref(), "sstate_mirrors")?,
        hashserve: c.optional(rc.hashserve.as_ref(), "hashserve")?,
        hashserve_upstream: c.optional(rc.hashserve_upstream.as_ref(), "hashserve_upstream")?,
        sstate_signatures: rc
            .sstate_signatures
            .as_ref()
            .map(|s| c.sstate_signatures(s))
            .transpose()?,
    };
    if let Some(hs) = &rc.hashserve
        && cache.sstate_dir.is_none()
        && cache.sstate_mirrors.is_none()
    {
        return Err(c.invalid(
            hs,
            "cache.hashserve".into(),
            hs.get_ref(),
            "sstate_dir or sstate_mirrors set as well (one hash server per sstate cache)",
        ));
    }
    if let Some(up) = &rc.hashserve_upstream
        && cache.hashserve.as_deref() != Some("auto")
    {
        return Err(c.invalid(
            up,
            "cache.hashserve_upstream".into(),
            up.get_ref(),
            "only together with cache.hashserve = \"auto\"",
        ));
    }

    let mut floating = Vec::new();
    let mut seen_floating = HashMap::new();
    for (i, f) in raw.floating.iter().enumerate() {
        let key = |field: &str| format!("floating[{i}].{field}");
        if !is_recipe_name(f.recipe.get_ref()) {
            return Err(c.invalid(
                &f.recipe,
                key("recipe"),
                f.recipe.get_ref(),
                "a recipe name (PN)",
            ));
        }
        if !is_srcrev_variable(f.variable.get_ref()) {
            return Err(c.invalid(
                &f.variable,
                key("variable"),
                f.variable.get_ref(),
                "SRCREV or SRCREV_<name>",
            ));
        }
        let pair = Spanned::new(
            f.recipe.span(),
            format!("{}:{}", f.recipe.get_ref(), f.variable.get_ref()),
        );
        c.unique(&mut seen_floating, &pair, "floating")?;
        floating.push(Floating {
            recipe: f.recipe.get_ref().clone(),
            variable: f.variable.get_ref().clone(),
            url: c.git_url(&f.url, key("url"))?,
            branch: c.conf_value(&f.branch, key("branch"))?,
        });
    }

    Ok(Config {
        distro,
        workdir,
        repos,
        layers,
        container,
        machines,
        cache,
        floating,
        build_dir: DEFAULT_BUILD_DIR.into(),
    })
}
