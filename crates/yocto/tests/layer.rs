//! The committed `meta-secret/` layer against our own rules, BitBake's real parser and
//! shellcheck.
//!
//! - `secretvm_yocto::layer::check` on every file of the layer: no findings; every layer the
//!   config lists in this repository exists.
//! - `bitbake_parse.py` (beside this file) parses every `.bb`, `.bbappend`, `.bbclass`, `.inc`
//!   and `.conf` with the `bb` package of PyPI `bitbake-setup` (`SECRETVM_BITBAKE_PYTHON`, a
//!   virtualenv python from `cargo xtask deps`); broken recipes written here must fail it, so the
//!   check is known to bite.
//! - shellcheck (POSIX sh, following the sourced files) and `sh -n` on the initramfs scripts.
//! - The initramfs functions that parse untrusted input (`cmdline_value`, `device_with_label`,
//!   `sha256_of`), run in the system `sh` and in busybox `sh` (`SECRETVM_BUSYBOX`); the sha256
//!   expectation is the FIPS 180-2 vector for "abc".
//!
//! - `cargo_vendor.py` (beside this file) builds `fixtures/cargo-vendor` offline the way a
//!   recipe with `secret-vm-cargo-vendor.bbclass` does: BitBake's crate fetcher takes the crates
//!   its Cargo.lock names (downloaded from static.crates.io by `cargo xtask deps`,
//!   `SECRETVM_CRATE_MIRROR`, into a local premirror) with
//!   `BB_NO_NETWORK`, checks their sha256, unpacks them; the class's configure function as
//!   BitBake expands it points cargo at them; `cargo build` with the class's flags must succeed
//!   with every proxy pointing at a closed port, and the program must print the sha256 Python
//!   computes. Its git dependency (a workspace of two crates that inherit from it, one taking
//!   the other by path) comes through BitBake's git fetcher and the class's
//!   `SECRET_VM_CARGO_GIT`, which vendors both crates with `cargo vendor` and leaves Cargo.lock
//!   as it is; built again in another work directory, the release binary must be byte-identical.
//!   A crate whose checksum is altered must be refused by the fetcher, and a git repository the
//!   recipe does not name, a flag naming no checkout of the locked commit, or a crates include
//!   left out, must stop the configure step, saying which. With `--recipe` it runs the layer's
//!   own `secretvm-guest.bb` the same way: BitBake parses the recipe with its crates include,
//!   fetches its source from the layer and its crates from that premirror (checking each
//!   sha256), the include must name exactly the crates of the package's Cargo.lock with the
//!   same sums, the class configures the build, and the program built must write the
//!   zero-padded sha256 it is given to a stand-in RTMR file.
//!
//! - `nvidia_driver.py` (beside this file) runs the NVIDIA driver recipe's `do_nvidia_extract`
//!   and `do_install` as BitBake expands them, on a stand-in `.run` installer (the real ones
//!   cannot be downloaded here) whose libraries the C compiler makes with three kinds of soname;
//!   the installed links must be those readelf reads, the firmware must be where the kernel's
//!   loader looks, and a missing library or a failed extraction must stop the task, naming it.
//!
//! - `python_wheels.py` (beside this file) runs the Python wheel recipes
//!   (`secret-vm-wheel.bbclass`: NVIDIA's attestation SDK and GPU verifier, pynvml, signxml):
//!   BitBake's fetcher takes each wheel from the ones `cargo xtask deps` downloaded from the
//!   recipes' PyPI URLs (`SECRETVM_PYPI_WHEELS`), checking its sha256; every
//!   LIC_FILES_CHKSUM is checked as oe-core does; do_install runs; then, on a python holding
//!   exactly the pinned layers' Python libraries at their versions (`SECRETVM_SCARTHGAP_PYTHON`,
//!   `fixtures/scarthgap-python.txt`), every module imports, every third-party import is in the
//!   recipe's RDEPENDS, and NVIDIA's signed reference-value samples pass the verifier's schema,
//!   certificate-chain and signature checks (under `faketime`, when their certificates were
//!   valid) while one with a measurement changed fails. A dependency dropped from RDEPENDS must
//!   fail it, naming the import.
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

/// What Python and cargo leave in the tree, ignored by `.gitignore`: BitBake imports the layer's
/// `lib/` (bytecode in `__pycache__`), and the in-guest program's builds go to `target`.
const NOT_SOURCE: [&str; 2] = ["__pycache__", "target"];

/// Every file below `dir` except under [`NOT_SOURCE`] directories, as (path relative to
/// `root`, text); sorted.
fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    };
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if !path.file_name().is_some_and(|n| NOT_SOURCE.iter().any(|x| n == *x)) {
                read_tree(root, &path, out);
            }
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

/// Every BBLAYERS entry that lives in this repository (no `repo`) is there, with its
/// `conf/layer.conf`: bitbake stops before parsing on one that is not ("ERROR: The following
/// layer directories do not exist"), as it did on `yocto/meta-nvidia`.
#[test]
fn committed_config_names_only_layers_that_exist_here() {
    let config_path = workspace().join("yocto/secretvm.toml");
    let text = fs::read_to_string(&config_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", config_path.display()));
    let config = match secretvm_yocto::config::parse("yocto/secretvm.toml", &text) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let own: Vec<&str> =
        config.layers.iter().filter(|l| l.repo.is_none()).map(|l| l.path.as_str()).collect();
    assert!(own.contains(&"meta-secret"), "{own:?}");
    for path in own {
        let conf = workspace().join(path).join("conf/layer.conf");
        assert!(
            conf.is_file(),
            "yocto/secretvm.toml names the layer {path}, but {} is missing",
            conf.display()
        );
    }
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
    // Nothing written into the layer: its lib/ is imported.
    let out =
        run(Command::new(python).env("PYTHONDONTWRITEBYTECODE", "1").arg(script()).arg(layer));
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
        "recipes-tdx/attest-tool/attest-tool_git.bb",
        "recipes-tdx/libtdx-attest/libtdx-attest_1.22.100.3.bb",
        "classes/secret-vm-cargo-vendor.bbclass",
    ] {
        assert!(stdout.contains(&format!("{file}: ok\n")), "{file} was not parsed:\n{stdout}");
    }
}

/// Runs the test script `name` (beside this file) with the layer, `before`, a fresh work
/// directory and `after` as arguments; returns (success, stdout).
fn layer_script(python: &Path, name: &str, before: &[PathBuf], after: &[&str]) -> (bool, String) {
    let work = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot create a temporary directory: {e}"),
    };
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut cmd = Command::new(python);
    cmd.arg(tests.join(name)).arg(layer_dir()).args(before).arg(work.path()).args(after);
    let out = run(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), stdout)
}

/// Runs `cargo_vendor.py` on `fixtures/cargo-vendor` with the crates `cargo xtask deps`
/// downloaded from static.crates.io (`SECRETVM_CRATE_MIRROR`); None (after saying why) when
/// that directory is not provisioned outside CI.
fn cargo_vendor(python: &Path, option: &[&str]) -> Option<(bool, String)> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cargo-vendor");
    let mirror = tool_from_env("SECRETVM_CRATE_MIRROR")?.to_string_lossy().into_owned();
    let after: Vec<&str> = [mirror.as_str()].iter().chain(option).copied().collect();
    Some(layer_script(python, "cargo_vendor.py", &[fixture], &after))
}

/// Runs `nvidia_driver.py` with `option`; None (after saying why) when a tool it needs is
/// missing outside CI.
fn nvidia_driver(option: &[&str]) -> Option<(bool, String)> {
    let python = tool_from_env("SECRETVM_BITBAKE_PYTHON")?;
    for tool in ["cc", "readelf", "objdump", "tar", "base64"] {
        tool_on_path(tool)?;
    }
    Some(layer_script(&python, "nvidia_driver.py", &[], option))
}

#[test]
fn the_nvidia_driver_recipe_installs_what_its_installer_extracted() {
    let Some((ok, stdout)) = nvidia_driver(&[]) else { return };
    assert!(ok, "{stdout}");
    assert!(stdout.contains("step 2: extracted NVIDIA-Linux-x86_64-550.144.03.run"), "{stdout}");
    // The links come from readelf's reading of each library, one per kind of soname.
    for link in [
        "libcuda.so.1 -> libcuda.so.550.144.03",
        "libnvidia-nvvm.so.4 -> libnvidia-nvvm.so.550.144.03",
    ] {
        assert!(stdout.contains(link), "no {link}:\n{stdout}");
    }
    assert!(!stdout.contains("libnvidia-gpucomp.so.1"), "{stdout}");
    assert!(stdout.contains("tools and GSP firmware where expected"), "{stdout}");
}

#[test]
fn the_nvidia_driver_recipe_stops_on_a_missing_library_or_a_failed_extraction() {
    let Some((ok, stdout)) = nvidia_driver(&["--missing", "libnvidia-ml"]) else { return };
    assert!(!ok, "a missing library was accepted:\n{stdout}");
    assert!(
        stdout.contains("FAILED at step 3")
            && stdout.contains(
                "libnvidia-ml.so.550.144.03 is not in NVIDIA-Linux-x86_64-550.144.03.run"
            ),
        "{stdout}"
    );
    let Some((ok, stdout)) = nvidia_driver(&["--broken-run"]) else { return };
    assert!(!ok, "a failed extraction was accepted:\n{stdout}");
    assert!(
        stdout.contains("FAILED at step 2")
            && stdout.contains("NVIDIA-Linux-x86_64-550.144.03.run did not extract")
            && stdout.contains("stand-in installer: corrupt archive"),
        "{stdout}"
    );
}

/// Runs `python_wheels.py` with `option`; None (after saying why) when a tool it needs is
/// missing outside CI.
fn python_wheels(option: &[&str]) -> Option<(bool, String)> {
    let python = tool_from_env("SECRETVM_BITBAKE_PYTHON")?;
    let target = tool_from_env("SECRETVM_SCARTHGAP_PYTHON")?;
    let wheels = tool_from_env("SECRETVM_PYPI_WHEELS")?;
    tool_on_path("faketime")?;
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scarthgap-python.txt");
    let mut after: Vec<String> =
        [target, list, wheels].iter().map(|p| p.to_string_lossy().into_owned()).collect();
    after.extend(option.iter().map(|o| (*o).to_owned()));
    let after: Vec<&str> = after.iter().map(String::as_str).collect();
    Some(layer_script(&python, "python_wheels.py", &[], &after))
}

#[test]
fn the_python_wheel_recipes_install_code_that_runs_on_the_layers_libraries() {
    let Some((ok, stdout)) = python_wheels(&[]) else { return };
    assert!(ok, "{stdout}");
    for recipe in [
        "python3-nvidia-ml-py",
        "python3-signxml",
        "python3-nv-local-gpu-verifier",
        "python3-nv-attestation-sdk",
    ] {
        assert!(stdout.contains(&format!("step 3: {recipe}: ")), "no license check of {recipe}");
        assert!(stdout.contains(&format!("step 4: {recipe}: do_install put")), "{stdout}");
        assert!(
            stdout.contains(&format!("step 2: {recipe}: every third-party import is in RDEPENDS")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("signed RIM samples pass schema, certificate chain and signature"));
    assert!(
        stdout.contains("with one measurement changed fails the signature"),
        "a tampered reference-value manifest was not refused:\n{stdout}"
    );
    assert!(!stdout.contains("PROBLEM"), "{stdout}");
}

#[test]
fn a_third_party_import_missing_from_rdepends_fails_the_wheel_check() {
    let drop = "python3-nv-local-gpu-verifier:python3-signxml";
    let Some((ok, stdout)) = python_wheels(&["--drop-rdepend", drop]) else { return };
    assert!(!ok, "a recipe without its signxml dependency was accepted:\n{stdout}");
    assert!(
        stdout.contains(
            "PROBLEM: python3-nv-local-gpu-verifier imports signxml (__init__.py) but its \
             RDEPENDS lacks python3-signxml"
        ),
        "{stdout}"
    );
}

#[test]
fn rust_recipes_build_offline_from_the_crates_bitbake_fetched() {
    let Some(python) = tool_from_env("SECRETVM_BITBAKE_PYTHON") else { return };
    if tool_on_path("cargo").is_none() || tool_on_path("git").is_none() {
        return;
    }
    let Some((ok, stdout)) = cargo_vendor(&python, &[]) else { return };
    assert!(ok, "the offline build failed:\n{stdout}");
    assert!(stdout.contains("step 3: bitbake"), "{stdout}");
    assert!(stdout.contains("cargo build --frozen succeeded offline"), "{stdout}");
    assert!(stdout.contains("and never names the work directory"), "{stdout}");
    assert!(
        stdout.contains(
            "step 4: vendored probe-git-dep-0.1.0, probe-git-util-0.1.0; Cargo.lock is unchanged"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("step 7: the release builds in two work directories are identical"),
        "{stdout}"
    );
}

#[test]
fn the_crate_fetcher_refuses_a_crate_whose_checksum_differs() {
    let Some(python) = tool_from_env("SECRETVM_BITBAKE_PYTHON") else { return };
    let Some((ok, stdout)) = cargo_vendor(&python, &["--tamper", "sha2"]) else { return };
    assert!(!ok, "a crate with a wrong checksum was accepted:\n{stdout}");
    assert!(stdout.contains("FAILED at step 3"), "{stdout}");
    assert!(
        stdout.contains("Checksum mismatch") && stdout.contains("sha2-0.10.8.crate"),
        "the failure is not the checksum of sha2:\n{stdout}"
    );
}

/// Runs `cargo_vendor.py` with `option`, which must make the class's configure step (step 4)
/// stop with a message containing each of `said` (skipped locally, lacking a tool).
fn configure_stops(option: &str, said: &[&str]) {
    let Some(python) = tool_from_env("SECRETVM_BITBAKE_PYTHON") else { return };
    if tool_on_path("git").is_none() {
        return;
    }
    let Some((ok, stdout)) = cargo_vendor(&python, &[option]) else { return };
    assert!(!ok, "cargo_vendor.py {option} was accepted:\n{stdout}");
    assert!(stdout.contains("FAILED at step 4"), "{stdout}");
    for text in said {
        assert!(
            stdout.contains(text),
            "with {option}, the failure does not say {text:?}:\n{stdout}"
        );
    }
}

#[test]
fn a_git_repository_the_recipe_does_not_name_stops_the_configure() {
    configure_stops(
        "--omit-git",
        &["SECRET_VM_CARGO_GIT does not name: \
           https://git.invalid/secretvm/probe-git-dep (probe-git-dep, probe-git-util)"],
    );
}

#[test]
fn a_git_checkout_without_the_locked_commit_stops_the_configure() {
    configure_stops(
        "--wrong-checkout",
        &[
            "SECRET_VM_CARGO_GIT[probe]: ",
            "is not a git checkout with commit 495b9a33f2c0467c43fd059fe87a44ee19ee60ad",
        ],
    );
}

#[test]
fn a_recipe_that_does_not_require_its_crates_include_stops_the_configure() {
    configure_stops(
        "--omit-crates",
        &["bbfatal: no vendored crates in", "does the recipe require vendor-probe-crates.inc"],
    );
}

#[test]
fn the_secretvm_guest_recipe_builds_its_source_from_the_layer_offline() {
    let Some(python) = tool_from_env("SECRETVM_BITBAKE_PYTHON") else { return };
    if tool_on_path("cargo").is_none() {
        return;
    }
    let recipe = "recipes-core/secretvm-guest/secretvm-guest.bb";
    let Some(mirror) = tool_from_env("SECRETVM_CRATE_MIRROR") else { return };
    let mirror = mirror.to_string_lossy().into_owned();
    let (ok, stdout) =
        layer_script(&python, "cargo_vendor.py", &[PathBuf::from(recipe)], &[&mirror, "--recipe"]);
    assert!(ok, "the recipe did not build:\n{stdout}");
    assert!(stdout.contains("fetched and unpacked file://secretvm-guest/"), "{stdout}");
    assert!(stdout.contains("crate checksums verified"), "{stdout}");
    let lock = layer_dir().join("recipes-core/secretvm-guest/files/secretvm-guest/Cargo.lock");
    let registry = fs::read_to_string(lock)
        .expect("secretvm-guest's Cargo.lock")
        .matches("source = \"registry+")
        .count();
    assert!(registry > 0, "secretvm-guest depends on sha2");
    let names = format!("its crates include names the {registry} crates of Cargo.lock");
    assert!(stdout.contains(&names), "{stdout}");
    assert!(stdout.contains("cargo build --frozen succeeded offline"), "{stdout}");
    assert!(stdout.contains("step 6: secretvm-guest wrote the zero-padded sha256"), "{stdout}");
    assert!(
        stdout.contains("step 7: the release builds in two work directories are identical"),
        "{stdout}"
    );
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

/// Runs `body` in `shell` after sourcing the initramfs function file, with `die` replaced (and
/// `poweroff` shadowed on PATH) so that nothing can power off the test machine. Returns the
/// exit status and stdout.
fn with_init_functions(shell: &[&str], body: &str) -> (i32, String) {
    let lib = layer_dir().join("recipes-core/secret-vm-initramfs-files/files/secret-vm-init.sh");
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot create a temporary directory: {e}"),
    };
    let stub = dir.path().join("poweroff");
    let written = fs::write(&stub, "#!/bin/sh\nexit 0\n")
        .and_then(|()| {
            fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        })
        // A file that the word `rootfs_hash=*` would expand to if the cmdline were globbed.
        .and_then(|()| fs::write(dir.path().join("rootfs_hash=glob-bait"), ""));
    if let Err(e) = written {
        panic!("cannot write the test stubs: {e}");
    }
    let script = format!(
        "PATH=\"{stubs}:$PATH\"\n. \"{lib}\"\ndie() {{ echo \"die: $*\"; exit 99; }}\n{body}\n",
        stubs = dir.path().display(),
        lib = lib.display(),
    );
    let out =
        run(Command::new(shell[0]).args(&shell[1..]).arg("-c").arg(script).current_dir(dir.path()));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The shells to run the functions in: the system `sh`, and busybox's (the initramfs shell).
fn shells() -> Vec<Vec<String>> {
    let mut shells = vec![vec!["sh".to_owned()]];
    if let Some(busybox) = tool_from_env("SECRETVM_BUSYBOX") {
        shells.push(vec![busybox.to_string_lossy().into_owned(), "sh".to_owned()]);
    }
    shells
}

#[test]
fn cmdline_values_are_exact_unique_and_not_globbed() {
    let cmdline = "console=ttyS0 xdocker_compose_hash=evil docker_compose_hash=abc rootfs_hash=* \
                   twice=1 twice=2 empty= ro";
    // (key, expected exit status, expected stdout)
    let cases = [
        ("docker_compose_hash", 0, "abc\n"),
        ("rootfs_hash", 0, "*\n"),
        ("empty", 0, "\n"),
        ("twice", 1, ""),
        ("docker_additional_files_hash", 1, ""),
        ("hash", 1, ""),
    ];
    for shell in shells() {
        let shell: Vec<&str> = shell.iter().map(String::as_str).collect();
        for (key, status, stdout) in cases {
            let got = with_init_functions(&shell, &format!("cmdline_value {key} '{cmdline}'"));
            assert_eq!(got, (status, stdout.to_owned()), "{shell:?}: cmdline_value {key}");
        }
    }
}

#[test]
fn sha256_of_prints_the_digest_or_fails() {
    // FIPS 180-2, appendix B.1: SHA-256("abc").
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n";
    for shell in shells() {
        let shell: Vec<&str> = shell.iter().map(String::as_str).collect();
        let got = with_init_functions(&shell, "printf abc > f && sha256_of f");
        assert_eq!(got, (0, abc.to_owned()), "{shell:?}");
        let got = with_init_functions(&shell, "sha256_of missing 2>/dev/null");
        assert_eq!(got, (1, String::new()), "{shell:?}");
    }
}

#[test]
fn devices_are_found_by_exact_unique_label() {
    let blkid = "/dev/sda1: LABEL=\"boot\" UUID=\"5E9A-2C71\" TYPE=\"vfat\" PARTLABEL=\"root\"\n\
                 /dev/sda2: LABEL=\"root\" UUID=\"0887d390-acd6-49a9-80a3-98612ba54589\" TYPE=\"ext4\"\n\
                 /dev/sdb: LABEL=\"GUEST_CONFIG\" TYPE=\"ext4\"\n\
                 /dev/sdc: LABEL=\"rootfs\" TYPE=\"ext4\"\n\
                 /dev/sdd: LABEL=\"twin\" TYPE=\"ext4\"\n\
                 /dev/sde: LABEL=\"twin\" TYPE=\"ext4\"";
    let cases = [
        ("root", 0, "/dev/sda2\n"),
        ("GUEST_CONFIG", 0, "/dev/sdb\n"),
        ("twin", 1, ""),
        ("absent", 1, ""),
    ];
    for shell in shells() {
        let shell: Vec<&str> = shell.iter().map(String::as_str).collect();
        for (label, status, stdout) in cases {
            let body = format!("device_with_label {label} '{blkid}' 2>/dev/null");
            let got = with_init_functions(&shell, &body);
            assert_eq!(got, (status, stdout.to_owned()), "{shell:?}: device_with_label {label}");
        }
    }
}
