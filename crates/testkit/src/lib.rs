//! Test support shared by the secretvm crates; a dev-dependency only.
//!
//! One rule for everything a test needs from outside the repository (the shared test vectors,
//! an external tool): when it is missing, a test under `CI=true` fails, and elsewhere it prints
//! `SKIPPED: <why>` and returns early.

#![allow(clippy::print_stderr)]

use std::env;
use std::path::{Path, PathBuf};

/// Whether the tests run in CI, where nothing may be skipped.
pub fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| v == "true")
}

/// Fails the calling test under CI; elsewhere prints why it is skipped. The caller returns.
pub fn skip(why: &str) {
    assert!(!in_ci(), "CI=true, so this test may not be skipped: {why}");
    eprintln!("SKIPPED: {why}; `cargo xtask test` provides everything");
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared test vectors: `$SECRETVM_VECTORS`, by default `../shared/vectors` beside the
/// workspace. `None` (after [`skip`]) when the directory is missing.
pub fn vectors() -> Option<PathBuf> {
    let dir = env::var_os("SECRETVM_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/vectors"));
    if dir.is_dir() {
        Some(dir)
    } else {
        skip(&format!("the test vectors are not at {} (set SECRETVM_VECTORS)", dir.display()));
        None
    }
}

/// The bytes of a vector file, by its path below [`vectors`].
pub fn vector(name: &str) -> Option<Vec<u8>> {
    let path = vectors()?.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(err) => {
            skip(&format!("cannot read the test vector {}: {err}", path.display()));
            None
        }
    }
}

/// A tool found on `PATH`, or `None` after [`skip`].
pub fn tool_on_path(name: &str) -> Option<PathBuf> {
    let found = env::var_os("PATH")
        .and_then(|p| env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()));
    if found.is_none() {
        skip(&format!("`{name}` is not on PATH"));
    }
    found
}

/// A tool whose path `cargo xtask test` passes in the environment variable `var`, or `None`
/// after [`skip`].
pub fn tool_from_env(var: &str) -> Option<PathBuf> {
    match env::var_os(var).map(PathBuf::from) {
        Some(path) if path.exists() => Some(path),
        Some(path) => {
            skip(&format!("{var}={} does not exist", path.display()));
            None
        }
        None => {
            skip(&format!("{var} is not set"));
            None
        }
    }
}

/// The base image of the container-engine tests: a Debian bookworm rootfs made by debootstrap
/// (no image registry is reachable) and imported into `program` (`docker` or `podman`) as
/// [`ENGINE_TEST_BASE`]. The rootfs is cached under `target/tools/bookworm-rootfs`, the image
/// in the engine's store. `None` (after [`skip`]) when debootstrap is missing or the tests do
/// not run as root.
pub fn engine_test_base(program: &str) -> Option<&'static str> {
    engine_test_base_as(program, None)
}

/// [`engine_test_base`] in the store of `user`'s rootless podman (`runuser -u <user> --
/// podman`) when `user` is given; the tests must run as root then.
pub fn engine_test_base_as(program: &str, user: Option<&str>) -> Option<&'static str> {
    static SETUP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let program = match user {
        Some(user) => format!("runuser -u '{user}' -- {program}"),
        None => program.to_owned(),
    };
    let exists = if program.ends_with("podman") {
        format!("{program} image exists {ENGINE_TEST_BASE}")
    } else {
        format!("{program} image inspect {ENGINE_TEST_BASE} >/dev/null")
    };
    if sh(&exists).0 {
        return Some(ENGINE_TEST_BASE);
    }
    let dir = workspace().join("target/tools/bookworm-rootfs");
    if !dir.join(".complete").exists() {
        tool_on_path("debootstrap")?;
        if !sh("test \"$(id -u)\" = 0").0 {
            skip("debootstrap needs root to make the container-engine test base image");
            return None;
        }
        let _ = std::fs::remove_dir_all(&dir);
        let (ok, out) = sh(&format!(
            "debootstrap --variant=minbase bookworm '{}' http://deb.debian.org/debian",
            dir.display()
        ));
        assert!(ok, "debootstrap failed:\n{out}");
        std::fs::write(dir.join(".complete"), b"").expect("cannot mark the rootfs complete");
    }
    let (ok, out) = sh(&format!(
        "tar -C '{}' --exclude=./.complete -c . | {program} import - {ENGINE_TEST_BASE}",
        dir.display()
    ));
    assert!(ok, "importing the base image into {program} failed:\n{out}");
    Some(ENGINE_TEST_BASE)
}

/// The tag [`engine_test_base`] imports.
pub const ENGINE_TEST_BASE: &str = "secretvm-test-base:bookworm";

/// Runs `script` with `sh -c`; returns whether it succeeded and its stdout and stderr.
#[allow(clippy::disallowed_methods)]
fn sh(script: &str) -> (bool, String) {
    let out = std::process::Command::new("sh").arg("-c").arg(script).output().expect("sh runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// An image SBOM as poky's create-spdx-3.0 deploys it, listing the image file `file` with the
/// SHA-256 `sha256_hex`: `crates/yocto/tests/fixtures/image-sbom.spdx.json` (serialized by
/// poky's own SPDX 3.0 library, see `image_sbom.py` there) with its placeholder file name and
/// digest replaced.
pub fn image_sbom(file: &str, sha256_hex: &str) -> Vec<u8> {
    let path = workspace().join("crates/yocto/tests/fixtures/image-sbom.spdx.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert_eq!(
        text.matches(&"0".repeat(64)).count(),
        1,
        "{}: one placeholder digest",
        path.display()
    );
    text.replace("IMAGE_FILE_NAME", file).replace(&"0".repeat(64), sha256_hex).into_bytes()
}

/// The stand-in for poky's `oe-init-build-env`, sourced by bash with the build directory: it
/// creates and enters it and puts `bitbake/bin` on `PATH`, as poky's does.
pub const STAND_IN_OE_INIT: &str = r#"# Stand-in for poky's oe-init-build-env (secretvm's tests).
OEROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export OEROOT
mkdir -p "$1"
cd "$1"
BUILDDIR=$(pwd)
export BUILDDIR
export PATH="$OEROOT/bitbake/bin:$PATH"
"#;

/// Writes a stand-in poky checkout into `poky`: [`STAND_IN_OE_INIT`], `bitbake/bin/bitbake`
/// (the script `bitbake`, executable) and BitBake's own library in `bitbake/lib`
/// ([`bitbake_lib_into`]). `None` (after [`skip`]) when that library is not available.
pub fn stand_in_poky(poky: &Path, bitbake: &str) -> Option<()> {
    use std::os::unix::fs::PermissionsExt;
    bitbake_lib_into(poky)?;
    std::fs::create_dir_all(poky.join("bitbake/bin")).expect("cannot create bitbake/bin");
    std::fs::write(poky.join("oe-init-build-env"), STAND_IN_OE_INIT).expect("oe-init-build-env");
    let bin = poky.join("bitbake/bin/bitbake");
    std::fs::write(&bin, bitbake).expect("cannot write bitbake");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    Some(())
}

/// Copies BitBake's `bb` package (PyPI `bitbake-setup`'s, in the environment of
/// `SECRETVM_BITBAKE_PYTHON`) to `<poky>/bitbake/lib/bb`, where poky keeps it, without
/// compiled bytecode: a stand-in poky checkout whose `bitbake/bin` is on `PATH` then gives
/// the builder BitBake's own `bb.utils` (which the runner's task-network check calls). `None`
/// (after [`skip`]) when the variable is not set.
pub fn bitbake_lib_into(poky: &Path) -> Option<()> {
    let python = tool_from_env("SECRETVM_BITBAKE_PYTHON")?;
    let (ok, bb) = sh(&format!(
        "'{}' -c 'import bb, os; print(os.path.dirname(bb.__file__))'",
        python.display()
    ));
    assert!(ok, "{bb}");
    let lib = poky.join("bitbake/lib");
    std::fs::create_dir_all(&lib).expect("cannot create bitbake/lib");
    let (ok, text) = sh(&format!(
        "tar -C '{}' --exclude=__pycache__ -c bb | tar -C '{}' -x",
        Path::new(bb.trim()).parent().expect("bb has a parent").display(),
        lib.display()
    ));
    assert!(ok, "copying bb failed:\n{text}");
    Some(())
}

/// A GnuPG home of a test's own, where keys are made with the real gpg. What a test expects
/// of the keys comes from gpg here, not from the code under test: a key's fingerprint is the
/// name of the revocation certificate gpg stores when it makes the key ([`GpgHome::make`]),
/// and the key id a signature is reported good by is read off gpg's own `GOODSIG` status line
/// ([`GpgHome::goodsig`]). The home's gpg-agent is stopped when it is dropped.
pub struct GpgHome {
    /// The directory, mode 0700.
    pub home: PathBuf,
}

impl GpgHome {
    /// A new, empty home at `home`.
    pub fn new(home: &Path) -> GpgHome {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(home)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", home.display()));
        GpgHome { home: home.to_path_buf() }
    }

    /// Runs gpg in batch mode in this home; panics if it fails.
    #[allow(clippy::disallowed_methods)] // Tests start gpg.
    pub fn gpg(&self, args: &[&str]) -> std::process::Output {
        let out = std::process::Command::new("gpg")
            .args(["--batch", "--no-tty", "--homedir"])
            .arg(&self.home)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("cannot start gpg");
        assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Makes a key with `args` (a `--quick-gen-key` command line) and returns its fingerprint.
    pub fn make(&self, args: &[&str]) -> String {
        let revocs = self.home.join("openpgp-revocs.d");
        let names = || -> Vec<String> {
            std::fs::read_dir(&revocs)
                .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into()).collect())
                .unwrap_or_default()
        };
        let before = names();
        self.gpg(args);
        let new: Vec<String> = names().into_iter().filter(|n| !before.contains(n)).collect();
        assert_eq!(new.len(), 1, "one new revocation certificate: {new:?}");
        new[0].trim_end_matches(".rev").to_owned()
    }

    /// An ed25519 key without passphrase, never expiring, with `usage` (`sign`, `cert`).
    pub fn key(&self, user_id: &str, usage: &str) -> String {
        self.make(&["--passphrase", "", "--quick-gen-key", user_id, "ed25519", usage, "never"])
    }

    /// Adds an ed25519 signing subkey to `fpr`.
    pub fn add_signing_subkey(&self, fpr: &str) {
        self.gpg(&["--passphrase", "", "--quick-add-key", fpr, "ed25519", "sign", "never"]);
    }

    /// Signs `data` with `fpr` into `sig` (detached, binary).
    pub fn sign(&self, fpr: &str, data: &Path, sig: &Path) {
        let _ = std::fs::remove_file(sig);
        let (d, s) = (data.to_str().expect("UTF-8"), sig.to_str().expect("UTF-8"));
        self.gpg(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "-u",
            fpr,
            "--detach-sign",
            "-o",
            s,
            d,
        ]);
    }

    /// The key id gpg reports in its `GOODSIG` status line for a signature by `fpr`, made and
    /// verified in this home.
    pub fn goodsig(&self, fpr: &str) -> String {
        let data = self.home.join("goodsig-data");
        let sig = self.home.join("goodsig-data.sig");
        std::fs::write(&data, fpr).expect("cannot write the data to sign");
        self.sign(fpr, &data, &sig);
        let out = self.gpg(&[
            "--status-fd",
            "1",
            "--verify",
            sig.to_str().expect("UTF-8"),
            data.to_str().expect("UTF-8"),
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let ids: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("[GNUPG:] GOODSIG "))
            .filter_map(|rest| rest.split(' ').next())
            .collect();
        assert_eq!(ids.len(), 1, "one GOODSIG line:\n{text}");
        ids[0].to_owned()
    }

    /// Writes `gpg --armor <what> <fprs>` (`--export`, `--export-secret-keys`) to `dst`;
    /// `passphrase` unlocks a protected secret key.
    pub fn export(&self, dst: &Path, what: &str, fprs: &[&str], passphrase: &str) {
        let mut args =
            vec!["--pinentry-mode", "loopback", "--passphrase", passphrase, "--armor", what];
        args.extend(fprs);
        std::fs::write(dst, self.gpg(&args).stdout)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", dst.display()));
    }
}

impl Drop for GpgHome {
    #[allow(clippy::disallowed_methods)] // Tests start gpgconf.
    fn drop(&mut self) {
        let _ = std::process::Command::new("gpgconf")
            .arg("--homedir")
            .arg(&self.home)
            .args(["--kill", "gpg-agent"])
            .status();
    }
}
