//! Checks of the `meta-secret/` layer that keep the build pinned and the production images
//! clean, on the layer's text: no file is read here.
//!
//! [`check`] takes every file of the layer as a (path relative to the layer root, text) pair,
//! plus the build config, and returns one [`Finding`] per problem, each naming the file, the
//! 1-based line and the [`Rule`]. The rules:
//!
//! - every `SRCREV` (and `SRCREV_<name>`) is a full commit: not AUTOREV, not a tag such as
//!   `v${PV}`, not a branch or a short id; no `tag=` in a git `SRC_URI` either;
//! - a production image (a `.bb` whose name contains `-prod`) pulls in, through its
//!   `require`/`include` chain inside the layer, neither `debug-tweaks` (nor
//!   `empty-root-password`, `allow-empty-password`, `allow-root-login`) nor an SSH key;
//! - no file of the layer contains an SSH public key (keys are the operator's, set at build time);
//! - every `part` of a `.wks` fixes its partition GUID (`--uuid`, GPT only) and its file-system
//!   id (`--fsuuid`), so the disk image does not change from build to build;
//! - the layer has a `conf/machine/<MACHINE>.conf` for each machine of the config, and no
//!   machine the config does not build;
//! - no task asks for the network (`do_compile[network] = "1"`): downloads belong in `SRC_URI`,
//!   where they are checksummed;
//! - every `file://` a recipe or append names (in any variable but `LIC_FILES_CHKSUM`, whose
//!   paths are in the source tree) is in the layer where BitBake looks for it: the recipe's
//!   `${BP}/`, `${BPN}/` or `files/` directory, or a `${THISDIR}/...` of `FILESEXTRAPATHS`;
//!   a recipe that also searches outside the layer (`${COREBASE}/...`) is not checked (any
//!   name may be there). Names with `${...}` are not checked;
//! - every patch (`.patch`, `.diff`) has an `Upstream-Status:` line with one of oe-core's
//!   values (Pending, Submitted, Accepted, Backport, Denied, Inappropriate), as oe-core's
//!   `patch-status` check asks of its own layers.
//!
//! The parser is line based, as bitbake's own is: backslash continuations are joined and `#`
//! comments skipped; shell and python function bodies are not interpreted.

use std::collections::BTreeSet;
use std::fmt;

use crate::config::{self, Config};
use crate::error::is_commit;

/// What a [`Finding`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rule {
    /// A SRCREV is neither a 40-digit commit nor AUTOREV nor a tag (a branch, a short id, ...).
    SrcrevNotCommit,
    /// A SRCREV follows a branch head (AUTOREV).
    Autorev,
    /// A SRCREV or a git SRC_URI names a tag, which is resolved over the network and can move.
    Tag,
    /// A production image gets debug-tweaks or another login-weakening image feature.
    ProdDebugTweaks,
    /// A production image gets an SSH key or the dev images' key setup.
    ProdSshKey,
    /// A file of the layer contains an SSH public key.
    SshKeyInLayer,
    /// A `.wks` partition without a fixed partition GUID or file-system id.
    WksUnfixedUuid,
    /// A machine of the build config has no machine conf in the layer.
    MachineMissing,
    /// A machine conf of the layer is not a machine of the build config.
    MachineUnknown,
    /// A task asks for network access.
    NetworkInTask,
    /// A recipe builds with cargo_bin, which downloads crates while compiling, without
    /// secret-vm-cargo-vendor, which makes it build from crates fetched through SRC_URI.
    CargoUnvendored,
    /// A `file://` of a recipe that is not where BitBake would look for it in the layer.
    LocalFileMissing,
    /// A patch without an `Upstream-Status:` line, or with a value oe-core does not know.
    PatchStatus,
}

impl Rule {
    /// The rule's name, as printed in findings.
    pub fn name(self) -> &'static str {
        match self {
            Rule::SrcrevNotCommit => "srcrev-not-commit",
            Rule::Autorev => "autorev",
            Rule::Tag => "tag",
            Rule::ProdDebugTweaks => "prod-debug-tweaks",
            Rule::ProdSshKey => "prod-ssh-key",
            Rule::SshKeyInLayer => "ssh-key-in-layer",
            Rule::WksUnfixedUuid => "wks-unfixed-uuid",
            Rule::MachineMissing => "machine-missing",
            Rule::MachineUnknown => "machine-unknown",
            Rule::NetworkInTask => "network-in-task",
            Rule::CargoUnvendored => "cargo-unvendored",
            Rule::LocalFileMissing => "local-file-missing",
            Rule::PatchStatus => "patch-status",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One problem: where it is, which rule, and what was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// The file, as the caller named it (relative to the layer root), or the config file.
    pub file: String,
    /// The 1-based line.
    pub line: usize,
    /// The rule broken.
    pub rule: Rule,
    /// What was found and what is expected.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: {}", self.file, self.line, self.rule, self.message)
    }
}

/// Image features that open a login without credentials.
const WEAK_FEATURES: &[&str] =
    &["debug-tweaks", "empty-root-password", "allow-empty-password", "allow-root-login"];

/// How SSH public keys start (`authorized_keys` format).
const KEY_PREFIXES: &[&str] = &[
    "ssh-rsa AAAA",
    "ssh-ed25519 AAAA",
    "ssh-dss AAAA",
    "ecdsa-sha2-nistp",
    "sk-ssh-ed25519@openssh.com AAAA",
    "sk-ecdsa-sha2-nistp",
];

/// Checks the layer `files` (path relative to the layer root, text) against the rules above
/// and the build config (`config_file` names it in findings). Returns the findings sorted by
/// file and line; an empty list means the layer passes.
pub fn check(
    files: &[(&str, &str)],
    config_file: &str,
    config_text: &str,
) -> crate::Result<Vec<Finding>> {
    let config = config::parse(config_file, config_text)?;
    let mut out = BTreeSet::new();
    for (path, text) in files {
        let lines = logical_lines(text);
        if is_metadata(path) {
            check_srcrevs(path, &lines, &mut out);
            check_network(path, &lines, &mut out);
        }
        if path.ends_with(".wks") || path.ends_with(".wks.in") {
            check_wks(path, &lines, &mut out);
        }
        if path.ends_with(".patch") || path.ends_with(".diff") {
            check_patch_status(path, text, &mut out);
        }
        check_keys(path, text, &mut out);
    }
    for (path, _) in files {
        if path.ends_with(".bb") && file_name(path).contains("-prod") {
            check_prod_image(files, path, &mut out);
        }
        if path.ends_with(".bb") {
            check_cargo_vendored(files, path, &mut out);
        }
        if path.ends_with(".bb") || path.ends_with(".bbappend") {
            check_local_files(files, path, &mut out);
        }
    }
    check_machines(files, &config, config_file, config_text, &mut out);
    Ok(out.into_iter().collect())
}

/// Whether bitbake reads the file as metadata.
fn is_metadata(path: &str) -> bool {
    [".bb", ".bbappend", ".inc", ".conf", ".bbclass"].iter().any(|ext| path.ends_with(ext))
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn dir_name(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// `rest` below the layer directory `dir` ("" is the layer root), either side possibly empty.
fn join_path(dir: &str, rest: &str) -> String {
    match (dir.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (false, true) => dir.to_owned(),
        (false, false) => format!("{dir}/{rest}"),
    }
}

/// A line as bitbake sees it: continuations joined, with the number of its first line.
struct Line {
    number: usize,
    text: String,
}

/// Joins backslash continuations and drops comment lines (a `#` as the first non-blank
/// character, as bitbake's parser treats it).
fn logical_lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut pending: Option<Line> = None;
    for (i, raw) in text.lines().enumerate() {
        let (body, continues) = match raw.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (raw, false),
        };
        match pending.as_mut() {
            Some(line) => line.text.push_str(body),
            None => {
                if raw.trim_start().starts_with('#') {
                    continue;
                }
                pending = Some(Line { number: i + 1, text: body.to_owned() });
            }
        }
        if !continues {
            out.extend(pending.take());
        }
    }
    out.extend(pending.take());
    out
}

/// A variable assignment: `NAME[flag]:override OP "value"`.
struct Assignment<'a> {
    /// The variable name without overrides or flag (`SRCREV_machine`).
    var: &'a str,
    /// The overrides after the name (`:pn-foo`, `:append`), as written, or "".
    overrides: &'a str,
    /// The flag in brackets, if any (`network`).
    flag: Option<&'a str>,
    /// The value between the quotes.
    value: &'a str,
}

/// Parses `line` as an assignment; `None` for anything else (functions, `inherit`, ...).
fn assignment(line: &str) -> Option<Assignment<'_>> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").map_or(line, str::trim_start);
    let name_end = line.find(|c: char| c.is_whitespace() || "=?:+.[".contains(c))?;
    let var = &line[..name_end];
    if var.is_empty() || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-${}/".contains(&b)) {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut flag = None;
    if let Some(after) = rest.strip_prefix('[') {
        let close = after.find(']')?;
        flag = Some(&after[..close]);
        rest = &after[close + 1..];
    }
    let overrides_end = rest.find(|c: char| c.is_whitespace() || "=?+.".contains(c))?;
    let overrides = &rest[..overrides_end];
    if !overrides.is_empty() && !overrides.starts_with(':') {
        return None;
    }
    let rest = rest[overrides_end..].trim_start();
    let ops = ["??=", "?=", ":=", "+=", "=+", ".=", "=.", "="];
    let op = ops.iter().find(|op| rest.starts_with(**op))?;
    let value = rest[op.len()..].trim();
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let inner = &value[1..];
    let value = &inner[..inner.rfind(quote)?];
    Some(Assignment { var, overrides, flag, value })
}

fn finding(out: &mut BTreeSet<Finding>, file: &str, line: usize, rule: Rule, message: String) {
    out.insert(Finding { file: file.to_owned(), line, rule, message });
}

/// `SRCREV` and `SRCREV_<name>` must be 40-digit commits; git SRC_URIs name no tag.
fn check_srcrevs(path: &str, lines: &[Line], out: &mut BTreeSet<Finding>) {
    for line in lines {
        let Some(a) = assignment(&line.text) else { continue };
        if a.flag.is_some() {
            continue;
        }
        if a.var == "SRCREV" || a.var.starts_with("SRCREV_") && a.var != "SRCREV_FORMAT" {
            let value = a.value.trim();
            let name = format!("{}{}", a.var, a.overrides);
            if value.contains("AUTOREV") || value == "AUTOINC" {
                let message = format!(
                    "{name} is {value:?}: it follows a branch head; pin a commit (or let conf/srcrev-lock.inc set it)"
                );
                finding(out, path, line.number, Rule::Autorev, message);
            } else if value.contains("PV}")
                || value.starts_with("refs/tags/")
                || looks_like_version(value)
            {
                let message = format!(
                    "{name} is {value:?}, a tag: tags are resolved over the network and can be moved; pin the commit it names"
                );
                finding(out, path, line.number, Rule::Tag, message);
            } else if value.contains("${") {
                let message = format!(
                    "{name} is {value:?}, an expression: write the commit it resolves to, 40 lowercase hex digits"
                );
                finding(out, path, line.number, Rule::SrcrevNotCommit, message);
            } else if !is_commit(value) {
                let message = format!(
                    "{name} is {value:?}, expected a full commit id: 40 lowercase hex digits"
                );
                finding(out, path, line.number, Rule::SrcrevNotCommit, message);
            }
        }
        if a.var == "SRC_URI" {
            for uri in a.value.split_whitespace() {
                let is_git = uri.starts_with("git://") || uri.starts_with("gitsm://");
                if is_git && uri.split(';').skip(1).any(|p| p.starts_with("tag=")) {
                    let message = format!("{uri} fetches a tag; fetch by commit (SRCREV) instead");
                    finding(out, path, line.number, Rule::Tag, message);
                }
            }
        }
    }
}

/// `v1.2`, `1.2.3`, `release-1.0`: names that are tags, not commits.
fn looks_like_version(value: &str) -> bool {
    let digits =
        value.trim_start_matches(|c: char| c.is_ascii_alphabetic() || c == '-' || c == '_');
    value.contains('.') && digits.starts_with(|c: char| c.is_ascii_digit())
}

/// `do_<task>[network] = "1"`.
fn check_network(path: &str, lines: &[Line], out: &mut BTreeSet<Finding>) {
    for line in lines {
        let Some(a) = assignment(&line.text) else { continue };
        if a.flag == Some("network") && a.var.starts_with("do_") && a.value.trim() == "1" {
            let message = format!(
                "{}[network] = \"1\": the task downloads outside SRC_URI and its checksums; vendor the dependencies into SRC_URI",
                a.var
            );
            finding(out, path, line.number, Rule::NetworkInTask, message);
        }
    }
}

/// The value of option `--name` on a wks line (`--name value` or `--name=value`).
fn wks_option<'a>(words: &[&'a str], name: &str) -> Option<&'a str> {
    for (i, word) in words.iter().enumerate() {
        if *word == name {
            return words.get(i + 1).copied();
        }
        if let Some(value) = word.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return Some(value);
        }
    }
    None
}

/// Whether `s` is a UUID in the 8-4-4-4-12 hex form.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `s` is a FAT volume id as wic takes it: up to 8 hex digits, optionally after `0x`.
fn is_fat_id(s: &str) -> bool {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    (1..=8).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Every partition of a wks fixes its GUID (GPT) and its file-system id.
fn check_wks(path: &str, lines: &[Line], out: &mut BTreeSet<Finding>) {
    let words_of = |line: &Line| -> Vec<String> {
        line.text.split_whitespace().map(str::to_owned).collect::<Vec<_>>()
    };
    let gpt = lines.iter().any(|line| {
        let words = words_of(line);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        words.first() == Some(&"bootloader")
            && wks_option(&words, "--ptable").is_some_and(|p| p.starts_with("gpt"))
    });
    for line in lines {
        let words = words_of(line);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        if words.first() != Some(&"part") {
            continue;
        }
        let mount = words.get(1).copied().unwrap_or("?");
        let fstype = wks_option(&words, "--fstype").unwrap_or("vfat");
        if fstype == "none" {
            continue;
        }
        if gpt {
            match wks_option(&words, "--uuid") {
                Some(uuid) if is_uuid(uuid) => {}
                Some(uuid) => {
                    let message = format!("partition {mount}: --uuid {uuid:?} is not a UUID");
                    finding(out, path, line.number, Rule::WksUnfixedUuid, message);
                }
                None => {
                    let message = format!(
                        "partition {mount} has no --uuid: wic draws a random partition GUID on every build"
                    );
                    finding(out, path, line.number, Rule::WksUnfixedUuid, message);
                }
            }
        }
        let fat = fstype == "vfat" || fstype == "msdos";
        match wks_option(&words, "--fsuuid") {
            Some(id) if fat && is_fat_id(id) || !fat && is_uuid(id) => {}
            Some(id) => {
                let expected = if fat { "0x and up to 8 hex digits" } else { "a UUID" };
                let message = format!(
                    "partition {mount}: --fsuuid {id:?} is not valid for {fstype}, expected {expected}"
                );
                finding(out, path, line.number, Rule::WksUnfixedUuid, message);
            }
            None => {
                let message = format!(
                    "partition {mount} has no --fsuuid: wic draws a random file-system id on every build"
                );
                finding(out, path, line.number, Rule::WksUnfixedUuid, message);
            }
        }
    }
}

/// No SSH public key anywhere in the layer.
fn check_keys(path: &str, text: &str, out: &mut BTreeSet<Finding>) {
    for (i, line) in text.lines().enumerate() {
        if let Some(prefix) = KEY_PREFIXES.iter().find(|p| line.contains(**p)) {
            let message = format!(
                "an SSH public key ({}...) is built in; the dev key comes from SECRET_VM_DEV_SSH_KEY, set by the operator",
                prefix.split(' ').next().unwrap_or(prefix)
            );
            finding(out, path, i + 1, Rule::SshKeyInLayer, message);
        }
    }
}

/// The files `path` pulls in with `require`/`include`, found among `files` relative to its
/// directory or to the layer root, with `path` itself first; each file once.
fn include_closure<'a>(files: &[(&'a str, &'a str)], path: &'a str) -> Vec<(&'a str, &'a str)> {
    let find = |p: &str| files.iter().find(|(f, _)| *f == p).copied();
    let mut out: Vec<(&str, &str)> = Vec::new();
    let mut todo: Vec<&str> = vec![path];
    while let Some(current) = todo.pop() {
        if out.iter().any(|(f, _)| *f == current) {
            continue;
        }
        let Some((name, text)) = find(current) else { continue };
        out.push((name, text));
        for line in logical_lines(text) {
            let mut words = line.text.split_whitespace();
            let (Some("require" | "include"), Some(target)) = (words.next(), words.next()) else {
                continue;
            };
            let beside = join_path(dir_name(name), target);
            if let Some((f, _)) = find(&beside).or_else(|| find(target)) {
                todo.push(f);
            }
        }
    }
    out
}

/// A recipe that inherits cargo_bin (itself or through what it includes) must also inherit
/// secret-vm-cargo-vendor; the finding is on the line that inherits cargo_bin.
fn check_cargo_vendored(files: &[(&str, &str)], recipe: &str, out: &mut BTreeSet<Finding>) {
    let mut cargo_bin = None;
    let mut vendored = false;
    for (path, text) in include_closure(files, recipe) {
        for line in logical_lines(text) {
            let mut words = line.text.split_whitespace();
            if !matches!(words.next(), Some("inherit" | "inherit_defer")) {
                continue;
            }
            for class in words.take_while(|w| !w.starts_with('#')) {
                match class {
                    "cargo_bin" => cargo_bin = cargo_bin.or(Some((path, line.number))),
                    "secret-vm-cargo-vendor" => vendored = true,
                    _ => {}
                }
            }
        }
    }
    if let (Some((path, number)), false) = (cargo_bin, vendored) {
        let message = format!(
            "{recipe} inherits cargo_bin without secret-vm-cargo-vendor: cargo would download \
             crates while compiling; inherit it and require ${{BPN}}-crates.inc"
        );
        finding(out, path, number, Rule::CargoUnvendored, message);
    }
}

/// The values oe-core accepts after `Upstream-Status:` (its `patch-status` check).
const UPSTREAM_STATUSES: &[&str] =
    &["Pending", "Submitted", "Accepted", "Backport", "Denied", "Inappropriate"];

/// A patch says whether and how it went upstream, on an `Upstream-Status:` line.
fn check_patch_status(path: &str, text: &str, out: &mut BTreeSet<Finding>) {
    let Some((number, line)) =
        text.lines().enumerate().find(|(_, l)| l.starts_with("Upstream-Status:"))
    else {
        let message = format!(
            "no Upstream-Status: line; say where the change stands upstream ({})",
            UPSTREAM_STATUSES.join(", ")
        );
        finding(out, path, 1, Rule::PatchStatus, message);
        return;
    };
    let value = line["Upstream-Status:".len()..].trim();
    let word = value.split(|c: char| c.is_whitespace() || c == '[').next().unwrap_or("");
    if !UPSTREAM_STATUSES.contains(&word) {
        let message = format!(
            "Upstream-Status is {value:?}; expected one of {}",
            UPSTREAM_STATUSES.join(", ")
        );
        finding(out, path, number + 1, Rule::PatchStatus, message);
    }
}

/// Where BitBake looks for a recipe's `file://` names inside the layer: `${BP}/`, `${BPN}/`
/// and `files/` beside a `.bb` (an append's own recipe is elsewhere), then each
/// `${THISDIR}/...` of `FILESEXTRAPATHS` in the recipe and what it includes. The flag is true
/// when `FILESEXTRAPATHS` also names a directory outside the layer.
fn search_dirs(recipe: &str, closure: &[(&str, &str)]) -> (Vec<String>, bool) {
    let beside = |sub: &str| join_path(dir_name(recipe), sub);
    let mut dirs = Vec::new();
    if let Some(stem) = file_name(recipe).strip_suffix(".bb") {
        let (bpn, pv) = stem.split_once('_').unwrap_or((stem, ""));
        if !pv.is_empty() {
            dirs.push(beside(&format!("{bpn}-{pv}")));
        }
        dirs.push(beside(bpn));
        dirs.push(beside("files"));
    }
    let mut outside = false;
    for (path, text) in closure {
        for line in logical_lines(text) {
            let Some(a) = assignment(&line.text) else { continue };
            if a.var != "FILESEXTRAPATHS" || a.flag.is_some() {
                continue;
            }
            for entry in a.value.split(':').map(str::trim).filter(|e| !e.is_empty()) {
                match entry.strip_prefix("${THISDIR}") {
                    Some(rest) => dirs.push(join_path(dir_name(path), rest.trim_matches('/'))),
                    None => outside = true,
                }
            }
        }
    }
    (dirs, outside)
}

/// Every `file://` name of a recipe or append (and what it includes) is a file, or a directory
/// holding files, in one of its [`search_dirs`].
fn check_local_files(files: &[(&str, &str)], recipe: &str, out: &mut BTreeSet<Finding>) {
    let closure = include_closure(files, recipe);
    let (dirs, outside) = search_dirs(recipe, &closure);
    if outside {
        // Any name not found here may be in the directory outside the layer.
        return;
    }
    let present = |name: &str| {
        dirs.iter().any(|d| {
            let wanted = format!("{d}/{name}");
            files.iter().any(|(f, _)| {
                f.strip_prefix(wanted.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
        })
    };
    for (path, text) in &closure {
        for line in logical_lines(text) {
            let Some(a) = assignment(&line.text) else { continue };
            if a.var == "LIC_FILES_CHKSUM" || a.flag.is_some() {
                continue;
            }
            for uri in a.value.split_whitespace() {
                let Some(local) = uri.strip_prefix("file://") else { continue };
                let name = local.split(';').next().unwrap_or("").trim_end_matches('/');
                if name.is_empty() || name.contains("${") || name.starts_with('/') {
                    continue;
                }
                if present(name) {
                    continue;
                }
                let looked: Vec<String> = dirs.iter().map(|d| format!("{d}/")).collect();
                let message = if looked.is_empty() {
                    format!(
                        "file://{name}: {recipe} adds no directory of this layer to FILESEXTRAPATHS \
                         (FILESEXTRAPATHS:prepend := \"${{THISDIR}}/files:\"), so BitBake looks only beside the recipe it appends"
                    )
                } else {
                    format!(
                        "file://{name} is not in the layer where BitBake looks for it for {recipe}: {}",
                        looked.join(", ")
                    )
                };
                finding(out, path, line.number, Rule::LocalFileMissing, message);
            }
        }
    }
}

/// A production image and everything it includes: no weak image features, no SSH key setup.
fn check_prod_image(files: &[(&str, &str)], image: &str, out: &mut BTreeSet<Finding>) {
    for (path, text) in include_closure(files, image) {
        for line in logical_lines(text) {
            if let Some(a) = assignment(&line.text) {
                let features = a.var == "IMAGE_FEATURES" || a.var == "EXTRA_IMAGE_FEATURES";
                let removes = a.overrides.contains(":remove");
                if features && !removes {
                    for weak in WEAK_FEATURES
                        .iter()
                        .filter(|w| a.value.split_whitespace().any(|v| v == **w))
                    {
                        let message =
                            format!("{} adds {weak} to the production image {image}", a.var);
                        finding(out, path, line.number, Rule::ProdDebugTweaks, message);
                    }
                }
            }
            let words: Vec<&str> = line.text.split_whitespace().collect();
            let requires_dev = matches!(words.first(), Some(&"require" | &"include"))
                && words.get(1).is_some_and(|t| file_name(t).contains("-dev"));
            if requires_dev {
                let message = format!(
                    "the production image {image} includes {}, a development include",
                    words[1]
                );
                finding(out, path, line.number, Rule::ProdSshKey, message);
            }
            if line.text.contains("authorized_keys") || line.text.contains("SECRET_VM_DEV_SSH_KEY")
            {
                let message =
                    format!("the production image {image} installs an SSH key (authorized_keys)");
                finding(out, path, line.number, Rule::ProdSshKey, message);
            }
        }
    }
}

/// One machine conf per machine of the config, and no other.
fn check_machines(
    files: &[(&str, &str)],
    config: &Config,
    config_file: &str,
    config_text: &str,
    out: &mut BTreeSet<Finding>,
) {
    let confs: Vec<&str> = files
        .iter()
        .filter_map(|(p, _)| p.strip_prefix("conf/machine/")?.strip_suffix(".conf"))
        .filter(|name| !name.contains('/'))
        .collect();
    for machine in &config.machines {
        if confs.contains(&machine.machine.as_str()) {
            continue;
        }
        let needle = format!("machine = \"{}\"", machine.machine);
        let line = config_text.lines().position(|l| l.trim() == needle).map_or(1, |i| i + 1);
        let message = format!(
            "machine {} ({}) has no conf/machine/{}.conf in the layer",
            machine.name, machine.machine, machine.machine
        );
        finding(out, config_file, line, Rule::MachineMissing, message);
    }
    for name in confs {
        if config.machines.iter().all(|m| m.machine != name) {
            let known: Vec<&str> = config.machines.iter().map(|m| m.machine.as_str()).collect();
            let message = format!(
                "{name} is not a machine of {config_file}, expected one of {}",
                known.join(", ")
            );
            finding(out, &format!("conf/machine/{name}.conf"), 1, Rule::MachineUnknown, message);
        }
    }
}

#[cfg(test)]
mod tests;
