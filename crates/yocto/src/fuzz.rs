//! The body of the `yocto_parse` cargo-fuzz target in `fuzz/`: every parser of this crate that
//! reads bytes a build, a user or a team cache produced, and what consumes their output, on
//! arbitrary input. Errors are fine; panics, overflows and unbounded work are the bugs, and so
//! is a broken property that the input cannot excuse (asserted below).

use crate::progress::{self, Event, Parser, RefusalReason};
use crate::runner::signing;
use crate::{conf, config, lock, sbom};

/// Runs every parser on `data` (the text ones on its UTF-8 reading, lossy).
pub fn check_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lock = check_lock(&text);
    check_config(&text, lock.as_ref());
    check_progress(&text);
    check_gpg(&text);
    let _ = sbom::file_digests(data);
}

/// A lock that parses renders to the canonical text, which parses back to the same lock and
/// renders to itself.
fn check_lock(text: &str) -> Option<lock::Lock> {
    let parsed = lock::parse("fuzz.lock", text).ok()?;
    let rendered = lock::render(&parsed);
    let again = match lock::parse("rendered.lock", &rendered) {
        Ok(again) => again,
        Err(e) => panic!("the rendering of a lock does not parse: {e}\n{rendered}"),
    };
    assert_eq!(again, parsed, "a lock changed through render and parse");
    assert_eq!(lock::render(&again), rendered, "the lock's rendering is not canonical");
    let _ = conf::srcrev_inc(&parsed);
    Some(parsed)
}

/// A config that parses is rendered into every file the build writes from it, selected by each
/// machine, and compared with the lock.
fn check_config(text: &str, lock: Option<&lock::Lock>) {
    let Ok(config) = config::parse("fuzz.toml", text) else { return };
    let _ = (config.cache.remote_sstate_mirror(), config.cache.needs_network());
    let _ = conf::auto_conf(&config);
    let _ = conf::bblayers(&config, "/work");
    let _ = conf::bblayers_conf("BBLAYERS ?= \" \\\n  ##OEROOT##/meta \\\n  \"\n", &config, "/w");
    let _ = conf::auto_conf(&config.from_scratch());
    for machine in &config.machines {
        let _ = conf::multiconfig_conf(machine);
        let _ = machine.targets();
        for artifact in &machine.artifacts {
            let _ = artifact.outputs();
        }
        let selected = config.select(&[machine.name.as_str()], &[]);
        if let Ok(selected) = selected {
            assert_eq!(selected.machines.len(), 1, "selecting one machine kept another");
        }
    }
    if let Some(lock) = lock {
        let _ = lock::check(&config, lock);
    }
}

/// Runs the progress parser over the lines, and reads every warning as an sstate refusal.
fn check_progress(text: &str) {
    let mut parser = Parser::default();
    let mut events: Vec<Event> = text.split_inclusive('\n').flat_map(|l| parser.line(l)).collect();
    events.extend(parser.finish());
    for event in &events {
        match event {
            Event::ParseProgress { percent } => assert!(*percent <= 100, "{percent}%"),
            Event::Warning { message } => check_refusal(message),
            _ => {}
        }
    }
}

/// A refusal is read back out of exactly the message poky prints for it.
fn check_refusal(message: &str) {
    let Some(refusal) = progress::sstate_refusal(message) else { return };
    let phrase = match refusal.reason {
        RefusalReason::Unsigned => "No signature file for",
        RefusalReason::NotVerified => "Cannot verify signature on",
    };
    let printed = format!(
        "{}: {phrase} sstate package {}, skipping acceleration...",
        refusal.task, refusal.package
    );
    assert_eq!(printed, message, "the refusal read does not print back as its message");
}

/// Reads the text as gpg's key listing and its status output, and checks the keys read
/// against their own fingerprints, as a verifying and as a signing builder.
fn check_gpg(text: &str) {
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let listed = signing::parse_listing(&lines);
    let signers: Vec<String> = listed.iter().map(|k| k.primary.fingerprint.clone()).collect();
    for signs in [false, true] {
        // The config names at least one signer; each signer passes only with a signing key.
        if let Ok(keyring) = signing::check(&signers, &listed, &listed, signs) {
            assert!(
                signers.is_empty() || !keyring.valid_sigs.is_empty(),
                "a keyring passed with no signing key"
            );
        }
    }
    let _ = signing::goodsigs(&lines);
}

#[cfg(test)]
mod tests {
    use super::check_parse;

    /// The committed examples run through every check, and hostile inputs do not panic.
    #[test]
    fn examples_and_hostile_inputs_pass_the_checks() {
        // Out of order, so the canonical rendering differs from the input.
        let lock = "version = 1\n\
            [[srcrev]]\nrecipe = \"z\"\nvariable = \"SRCREV\"\n\
            commit = \"2222222222222222222222222222222222222222\"\n\
            [[srcrev]]\nrecipe = \"a\"\nvariable = \"SRCREV_meta\"\n\
            commit = \"3333333333333333333333333333333333333333\"\n\
            [[repo]]\nname = \"poky\"\ncommit = \"72983ac391008ebceb45edc7a8f0f6d5f4fe715c\"\n";
        assert!(super::check_lock(lock).is_some(), "the example lock does not parse");
        let config = include_str!("../../../yocto/secretvm.toml");
        let knotty = include_str!("../tests/fixtures/knotty-sstate-signatures.log");
        for input in [
            lock.as_bytes(),
            config.as_bytes(),
            knotty.as_bytes(),
            b"",
            b"\xff\xfe\x00",
            b"version = 1\n[[repo]]\nname = \"\"\ncommit = \"\"\n",
            b"NOTE: Running task 18446744073709551615 of 0 (mc:a:virtual:b:c:do_x)\n",
            b"Summary: 1 task failed:\n  :\n    log: \n",
            b"pub:r:::ABCD::::::::\nfpr:::::::::X:\nsub:::::::::::s\n",
            b"{\"@context\":\"https://spdx.org/rdf/3.0.1/spdx-context.jsonld\",\"@graph\":[{}]}",
        ] {
            check_parse(input);
        }
    }
}
