//! The keyring of signed sstate (`runner::signing`) made and checked with the real gpg.
//!
//! The keys are made by gpg in a home of the test's own. What the checks must find comes from
//! gpg too, never from the code under test: a key's fingerprint is the name of the
//! revocation certificate gpg stores when it makes the key, and the key ids bitbake must
//! accept are the ids gpg prints in `GOODSIG` when it verifies, in that home, a signature
//! made by each key, which is what poky's sstate code compares `SSTATE_VALID_SIGS` with.
//!
//! The commands run on the host through a runner of the test's own, as the calling user (the
//! native engine refuses root, and CI runs as root); `tests/engines.rs` runs the same steps
//! through Docker in the builder image.

#![allow(clippy::disallowed_methods)] // The test makes keys with gpg and runs its steps.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use secretvm_testkit::{GpgHome, tool_on_path, workspace};
use secretvm_yocto::runner::signing::{self, Files, Keyring, Problem};
use secretvm_yocto::runner::{Error, Exit, Invocation, Mount, Network, Runner, User};

/// Runs each invocation's argv on the host in `cwd`, standard input empty, as a container run
/// of the builder would.
struct OnHost {
    cwd: PathBuf,
}

impl Runner for OnHost {
    fn run(
        &mut self,
        inv: &Invocation,
        log: &Path,
        on_line: &mut dyn FnMut(&str),
    ) -> secretvm_yocto::runner::Result<Exit> {
        let out = Command::new(&inv.argv[0])
            .args(&inv.argv[1..])
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = [out.stdout, out.stderr].concat();
        fs::write(log, &text).unwrap();
        for line in String::from_utf8_lossy(&text).lines() {
            on_line(line);
        }
        Ok(Exit::Code(out.status.code().unwrap_or(-1)))
    }
}

fn private_dir(path: &Path) {
    fs::DirBuilder::new().mode(0o700).recursive(true).create(path).unwrap();
}

/// meta-secret's gpg wrapper for signed sstate (`GPG_BIN`), by its absolute path.
fn sstate_gpg() -> String {
    workspace().join("meta-secret/scripts/secretvm-sstate-gpg").display().to_string()
}

/// The build's invocation, whose command each step replaces.
fn host_base(workspace: &Path) -> Invocation {
    Invocation {
        argv: Vec::new(),
        workdir: "/ws".into(),
        mounts: vec![Mount { host: workspace.into(), container: "/ws".into(), read_only: false }],
        env: Vec::new(),
        user: User::current(),
        network: Network::Default,
    }
}

/// A build of `workspace` that makes its keyring from the key files `keys` and `sign_key`
/// (copied into the home, as `secretvm build` does) and checks it against `signers`.
fn prepare(
    workspace: &Path,
    keys: &Path,
    sign_key: Option<&Path>,
    signers: &[&str],
) -> Result<Keyring, Error> {
    let home = workspace.join("build/secretvm-gnupg");
    let mut runner = OnHost { cwd: workspace.into() };
    let base = host_base(workspace);
    if home.exists() {
        signing::stop_agent(&mut runner, &base, "build/secretvm-gnupg", &home).unwrap();
        fs::remove_dir_all(&home).unwrap();
    }
    private_dir(&home);
    fs::copy(keys, home.join("signers.pgp")).unwrap();
    if let Some(k) = sign_key {
        fs::copy(k, home.join("sign-key.pgp")).unwrap();
    }
    let files = Files {
        home: "build/secretvm-gnupg",
        keys: "build/secretvm-gnupg/signers.pgp",
        sign_key: sign_key.map(|_| "build/secretvm-gnupg/sign-key.pgp"),
        gpg_bin: &sstate_gpg(),
    };
    let signers: Vec<String> = signers.iter().map(|s| (*s).to_owned()).collect();
    signing::prepare(&mut runner, &base, &files, &home, &signers)
}

fn problems(result: Result<Keyring, Error>) -> Vec<Problem> {
    match result {
        Err(Error::SstateKeys { problems }) => problems,
        other => panic!("expected the keyring to be refused, got {other:?}"),
    }
}

#[test]
fn the_keyring_holds_exactly_the_signers_and_accepts_their_signatures() {
    if tool_on_path("gpg").is_none() || tool_on_path("gpg-agent").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = GpgHome::new(&tmp.path().join("source"));
    // A: a certify-only primary key with a signing subkey, as a team would keep it.
    let a = src.key("sstate signer A <a@example.org>", "cert");
    src.add_signing_subkey(&a);
    // B: a primary key that signs itself.
    let b = src.key("sstate signer B <b@example.org>", "sign");
    let outsider = src.key("outsider <c@example.org>", "sign");
    let a_sig = src.goodsig(&a);
    let b_sig = src.goodsig(&b);
    assert_ne!(a_sig, a[24..], "gpg reports A's signing subkey, not its primary key");
    assert_eq!(b_sig, b[24..]);

    let ws = tmp.path().join("workspace");
    fs::create_dir_all(&ws).unwrap();
    let file = |name: &str| ws.join(name);
    src.export(&file("ab.asc"), "--export", &[&a, &b], "");
    src.export(&file("c.asc"), "--export", &[&outsider], "");
    src.export(&file("a.secret.asc"), "--export-secret-keys", &[&a], "");

    // A builder that signs with A and accepts A and B.
    let keyring = prepare(&ws, &file("ab.asc"), Some(&file("a.secret.asc")), &[&a, &b]).unwrap();
    assert_eq!(keyring.valid_sigs, [a_sig.clone(), b_sig.clone()]);
    assert_eq!(keyring.sign_key.as_deref(), Some(a.as_str()));
    let home = ws.join("build/secretvm-gnupg");
    for log in ["import", "list-keys", "list-secret-keys", "sign", "verify"] {
        assert!(home.join(format!("{log}.log")).is_file(), "no {log}.log");
    }
    // The keyring it left verifies A's signature as poky does, and not the outsider's.
    let check = |signer: &str| {
        let data = tmp.path().join("object");
        let sig = tmp.path().join("object.sig");
        fs::write(&data, "an sstate object").unwrap();
        let _ = fs::remove_file(&sig);
        let (d, s) = (data.to_str().unwrap(), sig.to_str().unwrap());
        src.gpg(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "-u",
            signer,
            "--detach-sign",
            "-o",
            s,
            d,
        ]);
        let out = Command::new("gpg")
            .args(["--batch", "--no-permission-warning", "--status-fd", "1", "--homedir"])
            .arg(&home)
            .args(["--verify", s, d])
            .output()
            .unwrap();
        let lines: Vec<String> =
            String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
        signing::goodsigs(&lines).iter().any(|id| keyring.valid_sigs.contains(id))
    };
    assert!(check(&a));
    assert!(check(&b));
    assert!(!check(&outsider), "a key outside the keyring was accepted");

    // A builder that only verifies.
    let keyring = prepare(&ws, &file("ab.asc"), None, &[&b, &a]).unwrap();
    assert_eq!(keyring.valid_sigs, [b_sig.clone(), a_sig.clone()], "in the config's order");
    assert_eq!(keyring.sign_key, None);

    // A key in the file that the config does not name, and a signer the file lacks.
    let p = problems(prepare(&ws, &file("ab.asc"), None, &[&a]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        matches!(&p[0], Problem::NotASigner { fingerprint, user_id }
            if *fingerprint == b && user_id.contains("sstate signer B")),
        "{p:?}"
    );
    let p = problems(prepare(&ws, &file("ab.asc"), None, &[&a, &b, &outsider]));
    assert_eq!(p, [Problem::Missing { fingerprint: outsider.clone() }]);

    // A secret key in the signers' file.
    let p = problems(prepare(&ws, &file("a.secret.asc"), None, &[&a]));
    assert_eq!(p, [Problem::UnexpectedSecret { fingerprint: a.clone() }]);

    // Signing with a key that is not a signer: its public half would enter the keyring too.
    src.export(&file("c.secret.asc"), "--export-secret-keys", &[&outsider], "");
    let p = problems(prepare(&ws, &file("ab.asc"), Some(&file("c.secret.asc")), &[&a, &b]));
    assert_eq!(
        p,
        [
            Problem::SignKeyNotASigner { fingerprint: outsider.clone() },
            Problem::SignKeyAddsKeys { fingerprints: vec![outsider.clone()] },
        ]
    );
    // A signer whose public key only the signing key file brings: the builds that only
    // verify would not have it.
    let p =
        problems(prepare(&ws, &file("ab.asc"), Some(&file("a.secret.asc")), &[&a, &b, &outsider]));
    assert_eq!(p, [Problem::Missing { fingerprint: outsider.clone() }]);
    // A signing key file that also carries another public key.
    let both = [fs::read(file("a.secret.asc")).unwrap(), fs::read(file("c.asc")).unwrap()].concat();
    fs::write(file("a-and-c.asc"), both).unwrap();
    let p = problems(prepare(&ws, &file("ab.asc"), Some(&file("a-and-c.asc")), &[&a, &b]));
    assert_eq!(p, [Problem::SignKeyAddsKeys { fingerprints: vec![outsider.clone()] }]);

    // A signing key with a passphrase: bitbake could not sign with it.
    let protected = src.make(&[
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "a passphrase",
        "--quick-gen-key",
        "protected <p@example.org>",
        "ed25519",
        "sign",
        "never",
    ]);
    src.export(&file("p.asc"), "--export", &[&protected], "");
    src.export(&file("p.secret.asc"), "--export-secret-keys", &[&protected], "a passphrase");
    let p = problems(prepare(&ws, &file("p.asc"), Some(&file("p.secret.asc")), &[&protected]));
    assert!(matches!(&p[..], [Problem::Probe { goodsigs, .. }] if goodsigs.is_empty()), "{p:?}");

    // An expired key (made in 2020, valid for a day), a revoked one, and one that cannot sign.
    let expired = src.make(&[
        "--faked-system-time",
        "20200101T000000!",
        "--passphrase",
        "",
        "--quick-gen-key",
        "expired <e@example.org>",
        "ed25519",
        "sign",
        "1d",
    ]);
    let revoked = src.key("revoked <r@example.org>", "sign");
    let rev = fs::read_to_string(src.home.join(format!("openpgp-revocs.d/{revoked}.rev"))).unwrap();
    // gpg stores the certificate with a ':' before its armor line, against accidental imports.
    let rev_file = tmp.path().join("revoke.asc");
    fs::write(&rev_file, rev.replace(":-----BEGIN", "-----BEGIN")).unwrap();
    src.gpg(&["--import", rev_file.to_str().unwrap()]);
    let cert_only = src.key("certify only <n@example.org>", "cert");
    src.export(&file("bad.asc"), "--export", &[&expired, &revoked, &cert_only], "");
    let p = problems(prepare(&ws, &file("bad.asc"), None, &[&expired, &revoked, &cert_only]));
    assert_eq!(
        p,
        [
            Problem::Unusable { fingerprint: expired, validity: 'e' },
            Problem::Unusable { fingerprint: revoked, validity: 'r' },
            Problem::CannotSign { fingerprint: cert_only },
        ]
    );

    // Not a key at all: gpg's own error, with its log.
    fs::write(file("junk.asc"), "not an OpenPGP key\n").unwrap();
    let p = problems(prepare(&ws, &file("junk.asc"), None, &[&a]));
    assert!(
        matches!(&p[..], [Problem::Gpg { step, output, .. }]
            if *step == "import the signers' keys" && output.contains("no valid OpenPGP data")),
        "{p:?}"
    );
    let p = problems(prepare(&ws, &file("ab.asc"), Some(&file("junk.asc")), &[&a, &b]));
    assert!(
        matches!(&p[..], [Problem::Gpg { step, .. }] if *step == "import the signing key"),
        "{p:?}"
    );
    signing::stop_agent(
        &mut OnHost { cwd: ws.clone() },
        &host_base(&ws),
        "build/secretvm-gnupg",
        &home,
    )
    .unwrap();
}

/// Runs meta-secret's gpg wrapper with `args`, as poky's `oe.gpg_sign.LocalSigner` runs
/// `GPG_BIN`; returns its exit code, standard output and standard error.
fn wrapper(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(sstate_gpg()).args(args).stdin(Stdio::null()).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// The key ids poky's `LocalSigner.verify` takes as good signatures: the first field of each
/// line matching its `^\[GNUPG:\] GOODSIG (\S+)\s(.*)$`.
fn poky_goodsigs(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("[GNUPG:] GOODSIG "))
        .filter_map(|rest| rest.split_once(char::is_whitespace))
        .map(|(id, _)| id.to_owned())
        .collect()
}

/// `scripts/secretvm-sstate-gpg`, run with the argument lists of poky 72983ac's
/// `LocalSigner.detach_sign` (an sstate object, unarmored, into a temporary directory) and
/// `LocalSigner.verify`: a signature it made is good for its object, and not once the object
/// and its signature are copied to another object's name (the substitution a writer to the
/// mirror could make), nor when the signature was made by gpg without the wrapper. The names
/// are longer than gpg's 50-character status-line pieces, as sstate names are.
#[test]
fn the_sstate_gpg_binds_each_signature_to_its_object() {
    if tool_on_path("gpg").is_none() || tool_on_path("python3").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = GpgHome::new(&tmp.path().join("signer"));
    let signer = src.key("sstate signer <s@example.org>", "cert");
    src.add_signing_subkey(&signer);
    let verifier = GpgHome::new(&tmp.path().join("verifier"));
    let public = tmp.path().join("signer.asc");
    src.export(&public, "--export", &[&signer], "");
    verifier.gpg(&["--import", public.to_str().unwrap()]);
    let (signer_home, verifier_home) =
        (src.home.to_str().unwrap().to_owned(), verifier.home.to_str().unwrap().to_owned());

    let sstate = tmp.path().join("sstate");
    fs::create_dir_all(sstate.join("8e")).unwrap();
    let name = |hash: &str| {
        format!(
            "sstate:sst-hello:all-oe-linux:1.0:r0:allarch:12:{}_deploy.tar.zst",
            hash.repeat(64)
        )
    };
    let (a, b) = (sstate.join("8e").join(name("a")), sstate.join("8e").join(name("b")));
    // poky signs a copy in a temporary directory beside the object, then renames both.
    let staging = sstate.join("tmp");
    fs::create_dir_all(&staging).unwrap();
    let staged = staging.join(name("a"));
    fs::write(&staged, "the build output of task a").unwrap();
    let staged_sig = format!("{}.sig", staged.display());
    let (code, _, err) = wrapper(&signing::poky_detach_sign(
        &signer,
        &signer_home,
        &staged_sig,
        staged.to_str().unwrap(),
    ));
    assert_eq!(code, 0, "{err}");
    fs::rename(&staged, &a).unwrap();
    fs::rename(&staged_sig, format!("{}.sig", a.display())).unwrap();
    let verify = |object: &Path| {
        let sig = format!("{}.sig", object.display());
        wrapper(&signing::poky_verify(&verifier_home, &sig))
    };
    let subkey = src.goodsig(&signer);

    let (code, stdout, err) = verify(&a);
    assert_eq!((code, poky_goodsigs(&stdout)), (0, vec![subkey.clone()]), "{stdout}{err}");

    // The same object and signature under another task's name.
    fs::copy(&a, &b).unwrap();
    fs::copy(format!("{}.sig", a.display()), format!("{}.sig", b.display())).unwrap();
    let (code, stdout, err) = verify(&b);
    assert_ne!(code, 0, "{stdout}");
    assert_eq!(poky_goodsigs(&stdout), Vec::<String>::new(), "{stdout}");
    assert!(err.contains(&format!("is not bound to {}", name("b"))), "{err}");
    assert!(err.contains(&name("a")), "the name it was signed for: {err}");

    // A signature gpg made without the wrapper: good, but bound to nothing.
    let sig_b = format!("{}.sig", b.display());
    src.sign(&signer, &b, Path::new(&sig_b));
    let (code, stdout, err) = verify(&b);
    assert_ne!(code, 0, "{stdout}");
    assert_eq!(poky_goodsigs(&stdout), Vec::<String>::new(), "{stdout}");
    assert!(err.contains("notation: none"), "{err}");

    // Anything else goes to gpg as it is.
    let (code, stdout, _) = wrapper(&["--version", "--no-permission-warning"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("gpg (GnuPG) "), "{stdout}");
}
