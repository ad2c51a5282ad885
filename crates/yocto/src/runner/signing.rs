//! The build's own GnuPG home, for signed sstate (`[cache.sstate_signatures]`).
//!
//! poky's sstate code verifies an sstate object before it installs it when
//! `SSTATE_VERIFY_SIG = "1"`: it runs `gpg --verify --status-fd 1` in `GPG_PATH` on the
//! object's detached `.sig`, and accepts the object only if gpg prints a `GOODSIG` line whose
//! key id is one of `SSTATE_VALID_SIGS` (without that list, any signature gpg calls good would
//! do). Otherwise it warns and runs the task from source. With `SSTATE_SIG_KEY` it also signs
//! every object it writes, in batch mode (`--passphrase-fd 0` with an empty passphrase,
//! `--pinentry-mode loopback`).
//!
//! So the keyring decides what a build trusts. [`prepare`] makes it from scratch on every run,
//! in the build directory ([`crate::conf::GNUPG_HOME`]), from the config's public-key file
//! (and signing key), with the builder's own gpg, then checks it: it must hold exactly the
//! keys the config names by fingerprint, none revoked or expired, each able to sign, and, on
//! a builder that signs, exactly one secret key, one of them ([`check`]). A key id in
//! `GOODSIG` is a 64-bit id that anyone can make a key for; since the keyring holds nothing
//! else, a good signature can only come from a listed key. gpg names the key that made the
//! signature, a signing subkey when there is one, so [`Keyring::valid_sigs`] are the long key
//! ids of every key of the signers that can sign.
//!
//! bitbake runs gpg through meta-secret's `scripts/secretvm-sstate-gpg` (`GPG_BIN`), which
//! binds each signature to the name of the object it signs (poky's signature covers the bytes
//! only, so a signed object could stand in for another task's). Last, [`prepare`] runs that
//! wrapper in the builder, and on a builder that signs, signs a file through it as poky does
//! and verifies the signature as poky does, so a key with a passphrase, or one gpg cannot
//! use, stops the build here rather than failing every sstate task hours later.

use std::fmt;
use std::path::Path;

use super::{Error, Exit, Invocation, Network, Result, Runner};

/// One key of a `--with-colons` listing: a primary key (`pub`, `sec`) or a subkey (`sub`,
/// `ssb`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedKey {
    /// The fingerprint (the `fpr` record after it), uppercase hex.
    pub fingerprint: String,
    /// The long key id (field 5).
    pub key_id: String,
    /// The validity (field 2): `r` revoked, `e` expired, `i` invalid, `d` disabled; anything
    /// else does not stop a signature from being good.
    pub validity: char,
    /// The key's own capabilities (field 12, lowercase letters only): `s` signs.
    pub capabilities: String,
    /// The first user id, for messages.
    pub user_id: String,
}

impl ListedKey {
    /// Whether gpg reports a good signature made with this key: it can sign and is neither
    /// revoked, expired, invalid nor disabled.
    fn signs(&self) -> bool {
        self.capabilities.contains('s') && !matches!(self.validity, 'r' | 'e' | 'i' | 'd')
    }
}

/// A primary key and its subkeys, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The primary key.
    pub primary: ListedKey,
    /// Its subkeys.
    pub subkeys: Vec<ListedKey>,
}

/// Reads gpg's `--with-colons --fixed-list-mode` listing (`--list-keys` or
/// `--list-secret-keys`) out of the lines a run printed; lines of any other shape (gpg's
/// messages on stderr) are skipped.
pub fn parse_listing(lines: &[String]) -> Vec<Listed> {
    let mut out: Vec<Listed> = Vec::new();
    // Which key the next `fpr` and `uid` records belong to: the primary (None) or a subkey.
    let mut current: Option<usize> = None;
    for line in lines {
        let fields: Vec<&str> = line.split(':').collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or("");
        let key = || ListedKey {
            fingerprint: String::new(),
            key_id: field(4).to_ascii_uppercase(),
            validity: field(1).chars().next().unwrap_or('-'),
            capabilities: field(11).chars().filter(char::is_ascii_lowercase).collect(),
            user_id: String::new(),
        };
        match field(0) {
            "pub" | "sec" => {
                out.push(Listed { primary: key(), subkeys: Vec::new() });
                current = None;
            }
            "sub" | "ssb" => {
                if let Some(last) = out.last_mut() {
                    last.subkeys.push(key());
                    current = Some(last.subkeys.len() - 1);
                }
            }
            "fpr" => {
                let fpr = field(9).to_ascii_uppercase();
                let target = out.last_mut().and_then(|l| match current {
                    None => Some(&mut l.primary),
                    Some(i) => l.subkeys.get_mut(i),
                });
                if let Some(k) = target
                    && k.fingerprint.is_empty()
                {
                    k.fingerprint = fpr;
                }
            }
            "uid" => {
                if let Some(l) = out.last_mut()
                    && l.primary.user_id.is_empty()
                {
                    l.primary.user_id = field(9).to_owned();
                }
            }
            _ => {}
        }
    }
    out
}

/// What the build's keyring gives its bitbake configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring {
    /// `SSTATE_VALID_SIGS`: the long key ids of the signers' keys that can sign, primary keys
    /// and subkeys, in the order of the config's signers.
    pub valid_sigs: Vec<String>,
    /// `SSTATE_SIG_KEY`: the fingerprint of the secret key this builder signs with.
    pub sign_key: Option<String>,
}

/// Why the keyring cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The key file holds a key the config does not name.
    NotASigner {
        /// Its fingerprint.
        fingerprint: String,
        /// Its first user id.
        user_id: String,
    },
    /// A signer's key is not in the key file.
    Missing {
        /// The fingerprint the config names.
        fingerprint: String,
    },
    /// A signer's key is revoked, expired, invalid or disabled.
    Unusable {
        /// Its fingerprint.
        fingerprint: String,
        /// gpg's validity letter.
        validity: char,
    },
    /// A signer's key has no key that can sign.
    CannotSign {
        /// Its fingerprint.
        fingerprint: String,
    },
    /// A secret key where only public keys belong (the signers' key file, or a builder that
    /// does not sign).
    UnexpectedSecret {
        /// Its fingerprint.
        fingerprint: String,
    },
    /// The signing key file holds no secret key, or more than one.
    SignKeyCount {
        /// The fingerprints found.
        found: Vec<String>,
    },
    /// The signing key is not one of the signers.
    SignKeyNotASigner {
        /// Its fingerprint.
        fingerprint: String,
    },
    /// The signing key file brought public keys the signers' file does not have.
    SignKeyAddsKeys {
        /// Their fingerprints.
        fingerprints: Vec<String>,
    },
    /// A gpg step failed.
    Gpg {
        /// What it was doing.
        step: &'static str,
        /// How it ended.
        exit: Exit,
        /// The end of its output.
        output: String,
        /// Its log.
        log: String,
    },
    /// The test signature, made as poky signs, was not accepted as poky verifies.
    Probe {
        /// The key ids gpg reported a good signature by.
        goodsigs: Vec<String>,
        /// The end of gpg's output.
        output: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotASigner { fingerprint, user_id } => write!(
                f,
                "the key file holds {fingerprint} ({user_id}), which is not in signers: add its \
                 fingerprint to signers or remove the key from the file"
            ),
            Problem::Missing { fingerprint } => {
                write!(
                    f,
                    "signer {fingerprint} is not in the key file: export its public key into it"
                )
            }
            Problem::Unusable { fingerprint, validity } => write!(
                f,
                "signer {fingerprint} is {} (gpg validity `{validity}`): gpg reports no good \
                 signature by it; renew or replace the key",
                match validity {
                    'r' => "revoked",
                    'e' => "expired",
                    'd' => "disabled",
                    _ => "invalid",
                }
            ),
            Problem::CannotSign { fingerprint } => write!(
                f,
                "signer {fingerprint} has no key that can sign (neither the primary key nor a \
                 subkey has the `s` capability)"
            ),
            Problem::UnexpectedSecret { fingerprint } => write!(
                f,
                "the signers' key file holds the secret key of {fingerprint}: it must hold public \
                 keys only (`gpg --export`); a builder that signs names its secret key in sign_key"
            ),
            Problem::SignKeyCount { found } => write!(
                f,
                "sign_key must hold exactly one secret key (`gpg --export-secret-keys FPR`), \
                 found {}",
                if found.is_empty() { "none".to_owned() } else { found.join(", ") }
            ),
            Problem::SignKeyNotASigner { fingerprint } => write!(
                f,
                "the signing key {fingerprint} is not one of signers: what this builder signs \
                 would not be accepted by the builds that share its sstate"
            ),
            Problem::SignKeyAddsKeys { fingerprints } => write!(
                f,
                "the signing key file adds keys the signers' key file does not hold ({}): only \
                 the signers' file may decide whom the build trusts",
                fingerprints.join(", ")
            ),
            Problem::Gpg { step, exit, output, log } => {
                write!(f, "gpg could not {step} ({exit}; log {log}):\n{output}")
            }
            Problem::Probe { goodsigs, output } => write!(
                f,
                "a test signature made as bitbake signs sstate was not accepted as bitbake \
                 verifies it (good signatures by: {}); the signing key must have no passphrase, \
                 since bitbake signs in batch mode from its tasks:\n{output}",
                if goodsigs.is_empty() { "none".to_owned() } else { goodsigs.join(", ") }
            ),
        }
    }
}

/// Checks the keyring's public keys (`public`, from `--list-keys`) against `signers` (the
/// config's fingerprints) and its secret keys (`secret`, from `--list-secret-keys`) against
/// whether this builder signs; returns what the bitbake configuration needs, or every problem.
pub fn check(
    signers: &[String],
    public: &[Listed],
    secret: &[Listed],
    signs: bool,
) -> std::result::Result<Keyring, Vec<Problem>> {
    let mut problems = Vec::new();
    for key in public {
        if !signers.contains(&key.primary.fingerprint) {
            problems.push(Problem::NotASigner {
                fingerprint: key.primary.fingerprint.clone(),
                user_id: key.primary.user_id.clone(),
            });
        }
    }
    let mut valid_sigs = Vec::new();
    for fingerprint in signers {
        let Some(key) = public.iter().find(|k| &k.primary.fingerprint == fingerprint) else {
            problems.push(Problem::Missing { fingerprint: fingerprint.clone() });
            continue;
        };
        let validity = key.primary.validity;
        if matches!(validity, 'r' | 'e' | 'i' | 'd') {
            problems.push(Problem::Unusable { fingerprint: fingerprint.clone(), validity });
            continue;
        }
        let ids: Vec<String> = std::iter::once(&key.primary)
            .chain(&key.subkeys)
            .filter(|k| k.signs())
            .map(|k| k.key_id.clone())
            .collect();
        if ids.is_empty() {
            problems.push(Problem::CannotSign { fingerprint: fingerprint.clone() });
        }
        valid_sigs.extend(ids);
    }
    let mut sign_key = None;
    if signs {
        if let [one] = secret {
            let fingerprint = one.primary.fingerprint.clone();
            if signers.contains(&fingerprint) {
                sign_key = Some(fingerprint);
            } else {
                problems.push(Problem::SignKeyNotASigner { fingerprint });
            }
        } else {
            let found = secret.iter().map(|k| k.primary.fingerprint.clone()).collect();
            problems.push(Problem::SignKeyCount { found });
        }
    } else {
        for key in secret {
            problems
                .push(Problem::UnexpectedSecret { fingerprint: key.primary.fingerprint.clone() });
        }
    }
    if problems.is_empty() { Ok(Keyring { valid_sigs, sign_key }) } else { Err(problems) }
}

/// The long key ids of the `GOODSIG` lines of gpg's `--status-fd` output, as poky's
/// `oe.gpg_sign.LocalSigner.verify` reads them.
pub fn goodsigs(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("[GNUPG:] GOODSIG "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Where the key files are, for [`prepare`]: paths relative to the invocation's working
/// directory (the workspace), inside the GnuPG home, copied there by the caller.
#[derive(Debug, Clone)]
pub struct Files<'a> {
    /// The GnuPG home (`<build dir>/secretvm-gnupg`), which the caller made empty, mode 0700,
    /// owned by the build user.
    pub home: &'a str,
    /// The copy of the signers' public keys.
    pub keys: &'a str,
    /// The copy of the signing key, on a builder that signs.
    pub sign_key: Option<&'a str>,
    /// The gpg bitbake runs (`GPG_BIN`): meta-secret's `scripts/secretvm-sstate-gpg`, which
    /// binds each signature to its sstate object's name.
    pub gpg_bin: &'a str,
}

/// Makes and checks the keyring in `files.home` with gpg, run by `runner` with `base`'s image,
/// mounts, user and environment (without network), each step's output in a log in the home
/// directory of the host (`host_home`); returns what `conf/sstate-signatures.inc` needs
/// ([`crate::conf::sstate_signatures_inc`]).
pub fn prepare(
    runner: &mut dyn Runner,
    base: &Invocation,
    files: &Files<'_>,
    host_home: &Path,
    signers: &[String],
) -> Result<Keyring> {
    let made = make(runner, base, files, host_home, signers);
    // Importing a secret key and signing start a gpg-agent for the home; in a container it
    // ends with the container, on the host it would outlive the run.
    stop_agent(runner, base, files.home, host_home)?;
    made
}

/// Stops the gpg-agent serving the GnuPG home `home` (relative to the invocation's working
/// directory), if one runs: before the home is removed, since an agent whose socket is gone
/// can no longer be told to stop.
pub fn stop_agent(
    runner: &mut dyn Runner,
    base: &Invocation,
    home: &str,
    host_home: &Path,
) -> Result<()> {
    let argv = ["gpgconf", "--homedir", home, "--kill", "gpg-agent"];
    let inv = Invocation {
        argv: argv.map(str::to_owned).to_vec(),
        network: Network::None,
        ..base.clone()
    };
    runner.run(&inv, &host_home.join("stop-agent.log"), &mut |_| {})?;
    Ok(())
}

fn make(
    runner: &mut dyn Runner,
    base: &Invocation,
    files: &Files<'_>,
    host_home: &Path,
    signers: &[String],
) -> Result<Keyring> {
    let home = files.home;
    let gpg = |args: &[&str]| {
        let mut argv =
            vec!["gpg", "--batch", "--no-tty", "--no-permission-warning", "--homedir", home];
        argv.extend(args);
        Invocation {
            argv: argv.into_iter().map(str::to_owned).collect(),
            network: Network::None,
            ..base.clone()
        }
    };
    let mut run = |name: &str, inv: Invocation| -> Result<Ran> {
        let log = host_home.join(format!("{name}.log"));
        let mut lines = Vec::new();
        let exit = runner.run(&inv, &log, &mut |l| lines.push(l.to_owned()))?;
        Ok(Ran { exit, lines, log: log.display().to_string() })
    };
    let fail = |problem: Problem| Error::SstateKeys { problems: vec![problem] };
    // The signers' file alone decides which public keys there are; the signing key, imported
    // after it, may add no other.
    run("import", gpg(&["--import", files.keys]))?.ok("import the signers' keys").map_err(fail)?;
    let listing = ["--with-colons", "--fixed-list-mode"];
    let list_keys = [&listing[..], &["--list-keys"]].concat();
    let public = run("list-keys", gpg(&list_keys))?.ok("list the keys").map_err(fail)?;
    let public = parse_listing(&public);
    let mut added = Vec::new();
    if let Some(sign_key) = files.sign_key {
        run("import-sign-key", gpg(&["--import", sign_key]))?
            .ok("import the signing key")
            .map_err(fail)?;
        let after = run("list-keys-after", gpg(&list_keys))?.ok("list the keys").map_err(fail)?;
        added = parse_listing(&after)
            .into_iter()
            .map(|k| k.primary.fingerprint)
            .filter(|f| !public.iter().any(|k| &k.primary.fingerprint == f))
            .collect();
    }
    let secret = run("list-secret-keys", gpg(&[&listing[..], &["--list-secret-keys"]].concat()))?
        .ok("list the secret keys")
        .map_err(fail)?;
    let mut keyring = check(signers, &public, &parse_listing(&secret), files.sign_key.is_some());
    if !added.is_empty() {
        let problem = Problem::SignKeyAddsKeys { fingerprints: added };
        keyring = Err(keyring.err().unwrap_or_default().into_iter().chain([problem]).collect());
    }
    let keyring = keyring.map_err(|problems| Error::SstateKeys { problems })?;
    // The gpg bitbake will run, as poky runs it (oe.gpg_sign.LocalSigner): it must start in
    // the builder, and on a builder that signs, sign a file and accept that signature.
    let poky = |args: &[&str]| Invocation {
        argv: std::iter::once(files.gpg_bin)
            .chain(args.iter().copied())
            .map(str::to_owned)
            .collect(),
        network: Network::None,
        ..base.clone()
    };
    run("gpg-bin", poky(&["--version", "--no-permission-warning"]))?
        .ok("run the sstate gpg (GPG_BIN)")
        .map_err(fail)?;
    if let Some(key) = &keyring.sign_key {
        // Sign the copy of the public keys as detach_sign signs an sstate object (standard
        // input is empty, so the passphrase is), then verify the signature as verify does.
        let sig = format!("{}.sig", files.keys);
        let signed = run("sign", poky(&poky_detach_sign(key, home, &sig, files.keys)))?;
        if !signed.exit.success() {
            return Err(fail(Problem::Probe { goodsigs: Vec::new(), output: signed.tail() }));
        }
        let verified = run("verify", poky(&poky_verify(home, &sig)))?;
        let good = goodsigs(&verified.lines);
        if !good.iter().any(|id| keyring.valid_sigs.contains(id)) {
            return Err(fail(Problem::Probe { goodsigs: good, output: verified.tail() }));
        }
    }
    Ok(keyring)
}

/// The arguments poky 72983ac's `oe.gpg_sign.LocalSigner.detach_sign` gives `GPG_BIN` when it
/// signs an sstate object (`input`, into `output`) as sstate.bbclass asks: unarmored, the
/// passphrase on standard input, gpg newer than 2.1 (`--pinentry-mode loopback`).
pub fn poky_detach_sign<'a>(
    key: &'a str,
    home: &'a str,
    output: &'a str,
    input: &'a str,
) -> [&'a str; 16] {
    [
        "--detach-sign",
        "--no-permission-warning",
        "--batch",
        "--no-tty",
        "--yes",
        "--passphrase-fd",
        "0",
        "-u",
        key,
        "--homedir",
        home,
        "--pinentry-mode",
        "loopback",
        "-o",
        output,
        input,
    ]
}

/// The arguments poky 72983ac's `LocalSigner.verify` gives `GPG_BIN` for the signature file
/// `sig` (gpg finds the data beside it).
pub fn poky_verify<'a>(home: &'a str, sig: &'a str) -> [&'a str; 7] {
    ["--verify", "--no-permission-warning", "--status-fd", "1", "--homedir", home, sig]
}

/// A finished gpg step.
struct Ran {
    exit: Exit,
    lines: Vec<String>,
    log: String,
}

impl Ran {
    /// Its last 20 lines.
    fn tail(&self) -> String {
        self.lines[self.lines.len().saturating_sub(20)..].join("\n")
    }

    /// Its lines, or [`Problem::Gpg`] if it failed.
    fn ok(self, step: &'static str) -> std::result::Result<Vec<String>, Problem> {
        if self.exit.success() {
            return Ok(self.lines);
        }
        Err(Problem::Gpg { step, exit: self.exit, output: self.tail(), log: self.log })
    }
}
