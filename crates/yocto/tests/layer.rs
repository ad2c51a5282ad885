//! The committed `meta-secret/` layer against our own rules, BitBake's real parser and
//! shellcheck.
//!
//! - `secretvm_yocto::layer::check` on every file of the layer: no findings.
//! - `bitbake_parse.py` (beside this file) parses every `.bb`, `.bbappend`, `.bbclass`, `.inc`
//!   and `.conf` with the `bb` package of PyPI `bitbake-setup` (`SECRETVM_BITBAKE_PYTHON`, a
//!   virtualenv python from `cargo xtask deps`); broken recipes written here must fail it, so the
//!   check is known to bite.
//! - shellcheck (POSIX sh, following the sourced files) and `sh -n` on the initramfs scripts.
//!
//! With `CI=true` a missing tool fails the test; elsewhere the test prints why it skips.

#![allow(clippy::disallowed_methods, clippy::print_stderr)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use secretvm_testkit::{tool_from_env, tool_on_path, workspace};

fn layer_dir() -> PathBuf {
    workspace().join("meta-secret")
}

/// Every file below `dir`, as (path relative to `root`, text); sorted.
fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    };
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_tree(root, &path, out);
            continue;
        }
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => panic!("{} is not readable as text: {e}", path.display()),
        };
        let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
        out.push((rel, text));
    }
}

#[test]
fn committed_layer_has_no_findings() {
    let root = layer_dir();
    let mut files = Vec::new();
    read_tree(&root, &root, &mut files);
    assert!(files.len() > 20, "meta-secret/ has only {} files", files.len());
    let pairs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    let config_path = workspace().join("yocto/secretvm.toml");
    let config = fs::read_to_string(&config_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", config_path.display()));
    let findings = match secretvm_yocto::layer::check(&pairs, "yocto/secretvm.toml", &config) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    };
    let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert!(findings.is_empty(), "meta-secret/ breaks the layer rules:\n{}", text.join("\n"));
}

fn run(cmd: &mut Command) -> Output {
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run {cmd:?}: {e}"),
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bitbake_parse.py")
}

/// Runs the parse check on `layer`; returns (success, stdout).
fn bitbake_parse(python: &Path, layer: &Path) -> (bool, String) {
    let out = run(Command::new(python).arg(script()).arg(layer));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    (out.status.success(), stdout)
}

#[test]
fn bitbake_parses_every_file_of_the_layer() {
    let Some(python) = tool_from_env("SECRETVM_BITBAKE_PYTHON") else { return };
    let (ok, stdout) = bitbake_parse(&python, &layer_dir());
    assert!(ok, "BitBake could not parse meta-secret/:\n{stdout}");
    // Every recipe, append, include and conf was seen (not an empty walk).
    for file in [
        "conf/layer.conf",
        "conf/distro/secret-vm.conf",
        "conf/machine/secret-vm-gcp-tdx.conf",
        "recipes-core/images/secret-vm-rootfs-prod.bb",
        "recipes-kernel/linux/linux-yocto-dev.bbappend",
        "recipes-bsp/secret-vm-ovmf/secret-vm-ovmf-common.inc",
    ] {
        assert!(stdout.contains(&format!("{file}: ok\n")), "{file} was not parsed:\n{stdout}");
    }
}

/// A one-recipe layer whose recipe ends with `tail`.
fn tiny_layer(tail: &str) -> tempfile::TempDir {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot create a temporary directory: {e}"),
    };
    let recipe_dir = dir.path().join("recipes-x/x");
    let conf_dir = dir.path().join("conf");
    let written = fs::create_dir_all(&recipe_dir)
        .and_then(|()| fs::create_dir_all(&conf_dir))
        .and_then(|()| fs::write(conf_dir.join("layer.conf"), "BBPATH .= \":${LAYERDIR}\"\n"))
        .and_then(|()| {
            fs::write(
                recipe_dir.join("x.bb"),
                format!("SUMMARY = \"x\"\nLICENSE = \"MIT\"\ninherit deploy\n{tail}"),
            )
        });
    if let Err(e) = written {
        panic!("cannot write the test layer: {e}");
    }
    dir
}

#[test]
fn bitbake_parse_accepts_a_good_recipe_and_rejects_broken_ones() {
    let Some(python) = tool_from_env("SECRETVM_BITBAKE_PYTHON") else { return };
    let good = tiny_layer("do_install() {\n    echo ok\n}\nrequire conf/other-layer.inc\n");
    let (ok, stdout) = bitbake_parse(&python, good.path());
    assert!(ok, "a valid recipe was rejected:\n{stdout}");

    // Each case: the recipe tail, and what BitBake's message must say about it.
    let cases = [
        ("do_install() {\n    echo never closed\n", "unclosed function"),
        ("FOO = \"no closing quote\n", "unparsed line"),
        ("python __anonymous() {\n    if True\n        pass\n}\n", "SyntaxError"),
        ("require x-missing.inc\n", "Could not include required file x-missing.inc"),
    ];
    for (tail, expected) in cases {
        let bad = tiny_layer(tail);
        let (ok, stdout) = bitbake_parse(&python, bad.path());
        assert!(!ok, "the broken recipe {tail:?} passed:\n{stdout}");
        let line = stdout.lines().find(|l| l.starts_with("recipes-x/x/x.bb: FAILED")).unwrap_or("");
        assert!(line.contains(expected), "{tail:?}: expected {expected:?} in {line:?}");
    }
}

fn init_scripts() -> Vec<PathBuf> {
    let dir = layer_dir().join("recipes-core/secret-vm-initramfs-files/files");
    let mut files: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    };
    files.sort();
    assert_eq!(files.len(), 5, "{files:?}");
    files
}

#[test]
fn init_scripts_pass_shellcheck_as_posix_sh() {
    let Some(shellcheck) = tool_on_path("shellcheck") else { return };
    // -x follows the `. /lib/...` lines through their `# shellcheck source=` directives, so the
    // per-TEE scripts are checked together with the functions they call.
    let files = init_scripts();
    let out = run(Command::new(shellcheck)
        .current_dir(files[0].parent().unwrap_or(Path::new(".")))
        .args(["--shell=sh", "--external-sources", "--severity=style"])
        .args(files.iter().map(|f| f.file_name().unwrap_or_default())));
    assert!(
        out.status.success(),
        "shellcheck:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn init_scripts_are_valid_sh() {
    for file in init_scripts() {
        let out = run(Command::new("sh").arg("-n").arg(&file));
        assert!(
            out.status.success(),
            "sh -n {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
