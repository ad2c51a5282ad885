//! The lock file (`yocto/secretvm.lock`): what the build's inputs resolved to.
//!
//! It records each repository's commit, every floating SRCREV resolved to a commit (rendered
//! by [`crate::conf::srcrev_inc`] into the include file the build uses), and the digest of the
//! builder image. [`parse`] reads it, [`render`] writes it in a canonical form (repositories in
//! the config's order as given, SRCREVs sorted by recipe and variable), and [`check`] lists how
//! it disagrees with a config.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use crate::config::Config;
use crate::error::{
    COMMIT, Error, Result, is_commit, is_recipe_name, is_srcrev_variable, line_col, syntax,
};

/// The lock format version this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A validated lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// The builder image's digest, `sha256:<64 hex>`, once an image has been built.
    pub builder_image: Option<String>,
    /// Repository commits, in the order given.
    pub repos: Vec<LockedRepo>,
    /// Resolved SRCREVs, sorted by recipe, then variable.
    pub srcrevs: Vec<Srcrev>,
}

/// A repository's commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedRepo {
    /// The repository name, as in the config.
    pub name: String,
    /// Its commit.
    pub commit: String,
}

/// A SRCREV that the recipe leaves floating (AUTOREV, a tag, a branch head), resolved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Srcrev {
    /// The recipe (PN), for example `linux-yocto-dev`.
    pub recipe: String,
    /// The variable: `SRCREV` or `SRCREV_<name>` (for example `SRCREV_machine`).
    pub variable: String,
    /// The commit it resolved to.
    pub commit: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    version: Spanned<u32>,
    builder_image: Option<Spanned<String>>,
    #[serde(default)]
    repo: Vec<RawRepo>,
    #[serde(default)]
    srcrev: Vec<RawSrcrev>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepo {
    name: Spanned<String>,
    commit: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSrcrev {
    recipe: Spanned<String>,
    variable: Spanned<String>,
    commit: Spanned<String>,
}

fn is_ident(s: &str, extra: &[u8]) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// Parses and validates a lock file. `file` names the text in error messages only.
pub fn parse(file: &str, text: &str) -> Result<Lock> {
    let raw: RawLock = toml::from_str(text).map_err(|e| syntax(file, text, &e))?;
    let line = |start: usize| line_col(text, start).0;
    let invalid = |start: usize, key: String, found: &str, expected: &str| Error::Invalid {
        file: file.to_owned(),
        line: line(start),
        key,
        found: found.to_owned(),
        expected: expected.to_owned(),
    };
    if *raw.version.get_ref() != FORMAT_VERSION {
        return Err(invalid(
            raw.version.span().start,
            "version".into(),
            &raw.version.get_ref().to_string(),
            "1",
        ));
    }
    if let Some(img) = &raw.builder_image {
        let ok = img.get_ref().strip_prefix("sha256:").is_some_and(|d| {
            d.len() == 64 && d.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if !ok {
            return Err(invalid(
                img.span().start,
                "builder_image".into(),
                img.get_ref(),
                "sha256:<64 lowercase hex digits>",
            ));
        }
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut repos = Vec::new();
    for (i, r) in raw.repo.iter().enumerate() {
        if !is_ident(r.name.get_ref(), b"-_.") {
            return Err(invalid(
                r.name.span().start,
                format!("repo[{i}].name"),
                r.name.get_ref(),
                "a repository name",
            ));
        }
        let l = line(r.name.span().start);
        if let Some(&first_line) = seen.get(r.name.get_ref()) {
            return Err(Error::Duplicate {
                file: file.to_owned(),
                line: l,
                key: "repo name".into(),
                name: r.name.get_ref().clone(),
                first_line,
            });
        }
        seen.insert(r.name.get_ref().clone(), l);
        if !is_commit(r.commit.get_ref()) {
            return Err(invalid(
                r.commit.span().start,
                format!("repo[{i}].commit"),
                r.commit.get_ref(),
                COMMIT,
            ));
        }
        repos.push(LockedRepo {
            name: r.name.get_ref().clone(),
            commit: r.commit.get_ref().clone(),
        });
    }
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let mut srcrevs = Vec::new();
    for (i, s) in raw.srcrev.iter().enumerate() {
        if !is_recipe_name(s.recipe.get_ref()) {
            return Err(invalid(
                s.recipe.span().start,
                format!("srcrev[{i}].recipe"),
                s.recipe.get_ref(),
                "a recipe name (PN)",
            ));
        }
        let var = s.variable.get_ref();
        if !is_srcrev_variable(var) {
            return Err(invalid(
                s.variable.span().start,
                format!("srcrev[{i}].variable"),
                var,
                "SRCREV or SRCREV_<name>",
            ));
        }
        if !is_commit(s.commit.get_ref()) {
            return Err(invalid(
                s.commit.span().start,
                format!("srcrev[{i}].commit"),
                s.commit.get_ref(),
                COMMIT,
            ));
        }
        let key = (s.recipe.get_ref().clone(), var.clone());
        let l = line(s.recipe.span().start);
        if let Some(&first_line) = seen.get(&key) {
            return Err(Error::Duplicate {
                file: file.to_owned(),
                line: l,
                key: "srcrev".into(),
                name: format!("{}:{}", key.0, key.1),
                first_line,
            });
        }
        seen.insert(key, l);
        srcrevs.push(Srcrev {
            recipe: s.recipe.get_ref().clone(),
            variable: var.clone(),
            commit: s.commit.get_ref().clone(),
        });
    }
    srcrevs.sort();
    Ok(Lock { builder_image: raw.builder_image.map(Spanned::into_inner), repos, srcrevs })
}

/// Renders a lock file in canonical form: [`parse`] of the result gives `lock` back (with
/// SRCREVs sorted), and equal locks render to equal bytes.
pub fn render(lock: &Lock) -> String {
    let mut out = String::from(
        "# Generated by `cargo xtask lock --update`; checked by `cargo xtask lock --check`.\n",
    );
    out.push_str(&format!("version = {FORMAT_VERSION}\n"));
    if let Some(img) = &lock.builder_image {
        out.push_str(&format!("builder_image = {}\n", quote(img)));
    }
    for r in &lock.repos {
        out.push_str(&format!(
            "\n[[repo]]\nname = {}\ncommit = {}\n",
            quote(&r.name),
            quote(&r.commit)
        ));
    }
    let mut srcrevs = lock.srcrevs.clone();
    srcrevs.sort();
    for s in &srcrevs {
        out.push_str(&format!(
            "\n[[srcrev]]\nrecipe = {}\nvariable = {}\ncommit = {}\n",
            quote(&s.recipe),
            quote(&s.variable),
            quote(&s.commit)
        ));
    }
    out
}

/// A TOML basic string. Validated lock values contain no quotes, backslashes or control
/// characters, but values built by hand may.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One way a lock disagrees with a config.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// The config has a repository the lock does not record.
    MissingRepo {
        /// The repository.
        name: String,
    },
    /// The lock records a repository the config does not have.
    ExtraRepo {
        /// The repository.
        name: String,
    },
    /// The commits differ.
    Commit {
        /// The repository.
        name: String,
        /// The config's commit.
        config: String,
        /// The lock's commit.
        lock: String,
    },
    /// The config declares a floating SRCREV that the lock does not pin.
    MissingSrcrev {
        /// The recipe.
        recipe: String,
        /// The variable.
        variable: String,
    },
    /// The lock pins a SRCREV that the config does not declare floating.
    UndeclaredSrcrev {
        /// The recipe.
        recipe: String,
        /// The variable.
        variable: String,
    },
    /// The lock records no builder image digest.
    NoBuilderImage,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::MissingRepo { name } => {
                write!(f, "repository {name:?} is in the config but not in the lock")
            }
            Mismatch::ExtraRepo { name } => {
                write!(f, "repository {name:?} is in the lock but not in the config")
            }
            Mismatch::Commit { name, config, lock } => {
                write!(f, "repository {name:?} is at {config} in the config but {lock} in the lock")
            }
            Mismatch::MissingSrcrev { recipe, variable } => write!(
                f,
                "{recipe}:{variable} floats in the config ([[floating]]) but the lock does not \
                 pin it (`secretvm lock --update --resolve` records its branch's commit)"
            ),
            Mismatch::UndeclaredSrcrev { recipe, variable } => write!(
                f,
                "the lock pins {recipe}:{variable}, which the config does not declare floating"
            ),
            Mismatch::NoBuilderImage => f.write_str("the lock records no builder image digest"),
        }
    }
}

/// Every way `lock` disagrees with `config`, in the config's repository order, then the lock's
/// extra repositories, then the floating SRCREVs the lock lacks (config order) and those it
/// pins undeclared (lock order), then a missing builder image. Empty when they agree.
pub fn check(config: &Config, lock: &Lock) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for repo in &config.repos {
        match lock.repos.iter().find(|l| l.name == repo.name) {
            None => out.push(Mismatch::MissingRepo { name: repo.name.clone() }),
            Some(l) if l.commit != repo.commit => out.push(Mismatch::Commit {
                name: repo.name.clone(),
                config: repo.commit.clone(),
                lock: l.commit.clone(),
            }),
            Some(_) => {}
        }
    }
    for l in &lock.repos {
        if config.repo(&l.name).is_none() {
            out.push(Mismatch::ExtraRepo { name: l.name.clone() });
        }
    }
    for f in &config.floating {
        if !lock.srcrevs.iter().any(|s| s.recipe == f.recipe && s.variable == f.variable) {
            out.push(Mismatch::MissingSrcrev {
                recipe: f.recipe.clone(),
                variable: f.variable.clone(),
            });
        }
    }
    for s in &lock.srcrevs {
        if !config.floating.iter().any(|f| f.recipe == s.recipe && f.variable == s.variable) {
            out.push(Mismatch::UndeclaredSrcrev {
                recipe: s.recipe.clone(),
                variable: s.variable.clone(),
            });
        }
    }
    if lock.builder_image.is_none() {
        out.push(Mismatch::NoBuilderImage);
    }
    out
}
