//! The layer checkouts: each `[[repo]]` of the config cloned (or fetched) into its path and
//! moved to its exact commit, detached; `git rev-parse HEAD` must then equal the commit. A
//! checkout with local changes is refused, never overwritten.
//!
//! [`remote_head`] reads a branch's head from its server (`git ls-remote`) for the lock.
//!
//! git is started only here. A missing commit is fetched by id alone, one commit deep
//! (`--depth=1`): the build needs the tree, not the history, and for poky that is about 18 MB
//! instead of the whole history. A server that refuses a commit by id (a plain git server
//! without `uploadpack.allowReachableSHA1InWant`; GitHub allows it) gets the configured branch
//! fetched in full instead, and last the commit by id without a depth, whose error is the one
//! reported. Whichever way it came, the checkout must then be at exactly the pinned commit.

use std::path::Path;

use super::process::{self, Captured, Host};
use super::{Error, Result, Spawn};
use crate::config::Repo;
use crate::error::is_commit;

fn git(dir: &Path, args: &[&str]) -> Spawn {
    let mut all = vec!["-C".to_owned(), dir.to_string_lossy().into_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    // No terminal: git must fail rather than wait for credentials.
    Spawn {
        program: "git".into(),
        args: all,
        env: None,
        set: vec![("GIT_TERMINAL_PROMPT".into(), "0".into())],
        cwd: None,
    }
}

fn run(host: &Host, spawn: &Spawn) -> Result<String> {
    process::capture(spawn, host, None)?.ok(spawn)
}

fn try_run(host: &Host, spawn: &Spawn) -> Result<Captured> {
    process::capture(spawn, host, None)
}

/// Puts `repo` at its commit under `workspace`, cloning or fetching as needed; returns the
/// checked-out commit (always `repo.commit`, verified with `git rev-parse HEAD`).
pub fn checkout(workspace: &Path, repo: &Repo, host: &Host) -> Result<String> {
    let dir = workspace.join(&repo.path);
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        what: "cannot create the checkout directory",
        path: dir.clone(),
        source,
    })?;
    let inside = try_run(host, &git(&dir, &["rev-parse", "--show-toplevel"]))?;
    let is_own_repo = inside.exit.success()
        && Path::new(inside.stdout.trim()).canonicalize().ok() == dir.canonicalize().ok();
    if !is_own_repo {
        run(host, &git(&dir, &["init", "--quiet"]))?;
    }
    let status = run(host, &git(&dir, &["status", "--porcelain", "--untracked-files=normal"]))?;
    if !status.trim().is_empty() {
        return Err(Error::Dirty { path: dir, status: status.trim_end().to_owned() });
    }
    let want = format!("{}^{{commit}}", repo.commit);
    let have = |host: &Host| -> Result<bool> {
        Ok(try_run(host, &git(&dir, &["cat-file", "-e", &want]))?.exit.success())
    };
    if !have(host)? {
        let shallow =
            git(&dir, &["fetch", "--quiet", "--no-tags", "--depth=1", &repo.url, &repo.commit]);
        let mut fetched = try_run(host, &shallow)?.exit.success() && have(host)?;
        if !fetched && let Some(branch) = &repo.branch {
            let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
            let spawn = git(&dir, &["fetch", "--quiet", "--no-tags", &repo.url, &refspec]);
            fetched = try_run(host, &spawn)?.exit.success() && have(host)?;
        }
        if !fetched {
            run(host, &git(&dir, &["fetch", "--quiet", "--no-tags", &repo.url, &repo.commit]))?;
        }
    }
    run(
        host,
        &git(
            &dir,
            &["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", &repo.commit],
        ),
    )?;
    let head = run(host, &git(&dir, &["rev-parse", "HEAD"]))?.trim().to_owned();
    if head != repo.commit {
        return Err(Error::WrongHead { path: dir, expected: repo.commit.clone(), found: head });
    }
    Ok(head)
}

/// The commit at the head of `branch` on the server at `url` (`git ls-remote`), for pinning a
/// floating SRCREV. A missing branch is [`Error::NoSuchBranch`].
pub fn remote_head(url: &str, branch: &str, host: &Host) -> Result<String> {
    let reference = format!("refs/heads/{branch}");
    let spawn = Spawn {
        program: "git".into(),
        args: vec!["ls-remote".into(), "--".into(), url.into(), reference.clone()],
        env: None,
        set: vec![("GIT_TERMINAL_PROMPT".into(), "0".into())],
        cwd: None,
    };
    let out = run(host, &spawn)?;
    let heads: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(commit, name)| *name == reference && is_commit(commit))
        .map(|(commit, _)| commit)
        .collect();
    match heads[..] {
        [commit] => Ok(commit.to_owned()),
        _ => Err(Error::NoSuchBranch {
            url: url.to_owned(),
            branch: branch.to_owned(),
            got: out.trim().to_owned(),
        }),
    }
}

/// [`checkout`] for every repository, in order.
pub fn checkout_all(workspace: &Path, repos: &[Repo], host: &Host) -> Result<()> {
    for repo in repos {
        checkout(workspace, repo, host)?;
    }
    Ok(())
}
