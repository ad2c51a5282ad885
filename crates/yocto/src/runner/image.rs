//! The builder image: built from `yocto/docker/Dockerfile` with an empty build context (the
//! Dockerfile goes to the engine on standard input), and tagged by what built it.
//!
//! The tag is `secretvm-builder:<12 hex>`, the first 12 hex digits of the SHA-256 of the
//! Dockerfile's bytes followed, for each build argument in order, by a line feed and
//! `<name>=<value>`. A changed Dockerfile or base image gives a new tag and so a new build; an
//! existing tag is reused.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::process::{self, Host};
use super::{Engine, Error, PLATFORM, Result, Spawn};

/// The repository part of builder image tags.
pub const REPOSITORY: &str = "secretvm-builder";

/// The build argument that names the base image.
pub const BASE_IMAGE_ARG: &str = "BASE_IMAGE";

/// The tag of the image built from `dockerfile` with `build_args`.
pub fn tag(dockerfile: &[u8], build_args: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    h.update(dockerfile);
    for (k, v) in build_args {
        h.update(format!("\n{k}={v}").as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{REPOSITORY}:{hex}")
}

/// The default of `ARG <name>=<default>` in a Dockerfile, if it declares one.
pub fn arg_default<'a>(dockerfile: &'a str, name: &str) -> Option<&'a str> {
    dockerfile.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("ARG ")?.trim();
        let (k, v) = rest.split_once('=')?;
        (k == name).then_some(v.trim())
    })
}

/// The command that builds `tag`; the Dockerfile is fed on standard input. Podman needs a
/// context directory even so: `empty_dir` must be an empty directory. `engine_args` are the
/// user's extra options (such as `--ulimit`), after ours.
pub fn build_spawn(
    engine: Engine,
    tag: &str,
    build_args: &[(String, String)],
    empty_dir: &Path,
    engine_args: &[String],
) -> Result<Spawn> {
    let Some(program) = engine.program() else {
        return Err(Error::Invalid {
            what: "the engine".into(),
            found: "native".into(),
            expected: "docker or podman (a native build uses no image)",
        });
    };
    let mut args = engine.global_args();
    args.extend(["build", "--platform", PLATFORM, "-t", tag].map(String::from));
    for (k, v) in build_args {
        args.push("--build-arg".into());
        args.push(format!("{k}={v}"));
    }
    args.extend(engine_args.iter().cloned());
    match engine {
        Engine::Podman { .. } => {
            args.extend(["-f".to_owned(), "-".to_owned()]);
            args.push(empty_dir.to_string_lossy().into_owned());
        }
        _ => args.push("-".into()),
    }
    Ok(Spawn { program: program.to_owned(), args, env: None, set: Vec::new(), cwd: None })
}

/// The command whose exit status says whether `tag` exists locally.
pub fn exists_spawn(engine: Engine, tag: &str) -> Option<Spawn> {
    let program = engine.program()?;
    let mut args = engine.global_args();
    match engine {
        Engine::Podman { .. } => args.extend(["image", "exists", tag].map(String::from)),
        _ => args.extend(["image", "inspect", "--format", "{{.Id}}", tag].map(String::from)),
    }
    Some(Spawn { program: program.to_owned(), args, env: None, set: Vec::new(), cwd: None })
}

/// The id (`sha256:<64 hex>`) of `tag` in the engine's local store, or `None` when the tag does
/// not exist there (or the engine is native).
pub fn id(engine: Engine, host: &Host, tag: &str) -> Result<Option<String>> {
    let Some(program) = engine.program() else { return Ok(None) };
    let mut args = engine.global_args();
    args.extend(["image", "inspect", "--format", "{{.Id}}", tag].map(String::from));
    let spawn = Spawn { program: program.to_owned(), args, env: None, set: Vec::new(), cwd: None };
    let captured = process::capture(&spawn, host, None)?;
    if !captured.exit.success() {
        return Ok(None);
    }
    // Docker prints `sha256:<hex>`, podman the bare hex.
    let raw = captured.stdout.trim();
    let hex = raw.strip_prefix("sha256:").unwrap_or(raw);
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Error::Invalid {
            what: format!("the id `{spawn}` printed"),
            found: raw.to_owned(),
            expected: "sha256:<64 lowercase hex digits> or the 64 digits alone",
        });
    }
    Ok(Some(format!("sha256:{hex}")))
}

/// Whether `tag` exists in the engine's local store.
pub fn exists(engine: Engine, host: &Host, tag: &str) -> Result<bool> {
    let Some(spawn) = exists_spawn(engine, tag) else { return Ok(false) };
    Ok(process::capture(&spawn, host, None)?.exit.success())
}

/// Builds the image unless its tag exists, streaming the engine's output to `on_line` and
/// `log`; returns the tag.
pub fn ensure(
    engine: Engine,
    host: &Host,
    dockerfile: &[u8],
    build_args: &[(String, String)],
    engine_args: &[String],
    log: &Path,
    on_line: &mut dyn FnMut(&str),
) -> Result<String> {
    let tag = tag(dockerfile, build_args);
    if exists(engine, host, &tag)? {
        return Ok(tag);
    }
    let empty = tempfile::tempdir().map_err(|source| Error::Io {
        what: "cannot create an empty build context in",
        path: std::env::temp_dir(),
        source,
    })?;
    let spawn = build_spawn(engine, &tag, build_args, empty.path(), engine_args)?;
    let (exit, output) = process::stream(&spawn, host, Some(dockerfile), Some(log), on_line)?;
    if !exit.success() {
        return Err(Error::Failed { command: spawn.to_string(), exit, output });
    }
    Ok(tag)
}
