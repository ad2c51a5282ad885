//! The image SBOMs: what an SPDX 3.0 document that poky's `create-spdx-3.0` deploys beside an
//! image says about the image files themselves.
//!
//! An image's SBOM (`<IMAGE_LINK_NAME>.spdx.json`) is JSON-LD: an `@context` naming the SPDX
//! 3.0 context and an `@graph` of elements. Among them, one `software_File` per image file the
//! image recipe deployed (`<IMAGE_NAME>.<type>`, the file behind the stable link
//! `<IMAGE_LINK_NAME>.<type>`), whose `verifiedUsing` carries the file's SHA-256:
//!
//! ```json
//! {"type":"software_File","spdxId":"…","name":"secret-vm-rootfs-dev-secret-vm-tdx.rootfs-v0.0.34.cpio",
//!  "verifiedUsing":[{"type":"Hash","algorithm":"sha256","hashValue":"…"}], …}
//! ```
//!
//! [`file_digests`] reads those pairs, and [`check_image`] tells whether an SBOM describes the
//! exact bytes collection publishes for one of its images, so a release never carries an SBOM
//! of some other build of the image.

use std::collections::BTreeMap;

use serde_json::Value;

/// The JSON-LD context of SPDX 3.0 documents, without the minor version and file name:
/// `https://spdx.org/rdf/3.0.1/spdx-context.jsonld` is SPDX 3.0.1's.
const CONTEXT_PREFIX: &str = "https://spdx.org/rdf/3.0.";

/// Why an SBOM is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not JSON.
    #[error("not JSON: {0}")]
    Json(String),
    /// JSON, but not an SPDX 3.0 JSON-LD document.
    #[error("not an SPDX 3.0 JSON-LD document: {0}")]
    NotSpdx3(String),
    /// An element is malformed.
    #[error("@graph[{index}]: {what}")]
    Element {
        /// Its index in `@graph`.
        index: usize,
        /// What is wrong.
        what: String,
    },
    /// The SBOM lists no file of the image's name.
    #[error("it lists no software_File named {file:?} (the image's file){}", listed_names(.listed))]
    NoSuchFile {
        /// The image's file name.
        file: String,
        /// The file names it lists that look like image files (no `/`), at most a few.
        listed: Vec<String>,
    },
    /// The SBOM gives the image's file another SHA-256.
    #[error(
        "it gives {file} the SHA-256 {listed}, but the collected image has {actual}: it describes another build of the image"
    )]
    Mismatch {
        /// The image's file name.
        file: String,
        /// The SHA-256 the SBOM gives.
        listed: String,
        /// The SHA-256 of the image collected.
        actual: String,
    },
}

fn listed_names(listed: &[String]) -> String {
    if listed.is_empty() { String::new() } else { format!("; it lists {}", listed.join(", ")) }
}

/// The files an SPDX 3.0 SBOM lists with a SHA-256 (`software_File` elements whose
/// `verifiedUsing` has a `Hash` with `algorithm` `sha256`): file name → lowercase hex digests
/// (one per element of that name, in document order).
pub fn file_digests(bytes: &[u8]) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| Error::Json(e.to_string()))?;
    let context = match doc.get("@context") {
        Some(Value::String(c)) => vec![c.as_str()],
        Some(Value::Array(cs)) => cs.iter().filter_map(Value::as_str).collect(),
        _ => return Err(Error::NotSpdx3("it has no @context".into())),
    };
    if !context.iter().any(|c| c.starts_with(CONTEXT_PREFIX)) {
        return Err(Error::NotSpdx3(format!(
            "its @context is {context:?}, expected {CONTEXT_PREFIX}<minor>/spdx-context.jsonld"
        )));
    }
    let Some(graph) = doc.get("@graph").and_then(Value::as_array) else {
        return Err(Error::NotSpdx3("it has no @graph array".into()));
    };
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (index, element) in graph.iter().enumerate() {
        if element.get("type").and_then(Value::as_str) != Some("software_File") {
            continue;
        }
        let bad = |what: String| Error::Element { index, what };
        let Some(name) = element.get("name").and_then(Value::as_str) else {
            return Err(bad("a software_File without a name".into()));
        };
        let hashes = match element.get("verifiedUsing") {
            None => continue,
            Some(Value::Array(hashes)) => hashes,
            Some(_) => return Err(bad(format!("{name}: verifiedUsing is not an array"))),
        };
        for hash in hashes {
            if hash.get("type").and_then(Value::as_str) != Some("Hash")
                || hash.get("algorithm").and_then(Value::as_str) != Some("sha256")
            {
                continue;
            }
            let value = hash.get("hashValue").and_then(Value::as_str).unwrap_or_default();
            if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!(
                    "{name}: sha256 hashValue {value:?}, expected 64 hex digits"
                )));
            }
            files.entry(name.to_owned()).or_default().push(value.to_ascii_lowercase());
        }
    }
    Ok(files)
}

/// Checks that the SBOM `files` (from [`file_digests`]) lists the image file `file` (its name in
/// the deploy directory, `<IMAGE_NAME>.<type>`) with the SHA-256 `sha256` (lowercase hex), and
/// with no other.
pub fn check_image(
    files: &BTreeMap<String, Vec<String>>,
    file: &str,
    sha256: &str,
) -> Result<(), Error> {
    let Some(listed) = files.get(file) else {
        let listed = files.keys().filter(|n| !n.contains('/')).take(8).cloned().collect();
        return Err(Error::NoSuchFile { file: file.to_owned(), listed });
    };
    match listed.iter().find(|l| l.as_str() != sha256) {
        Some(other) => Err(Error::Mismatch {
            file: file.to_owned(),
            listed: other.clone(),
            actual: sha256.to_owned(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sbom(graph: &str) -> Vec<u8> {
        format!(
            r#"{{"@context":"https://spdx.org/rdf/3.0.1/spdx-context.jsonld","@graph":[{graph}]}}"#
        )
        .into_bytes()
    }

    fn file(name: &str, sha256: &str) -> String {
        format!(
            r#"{{"type":"software_File","spdxId":"x","name":"{name}","verifiedUsing":[{{"type":"Hash","algorithm":"sha256","hashValue":"{sha256}"}}]}}"#
        )
    }

    #[test]
    fn reads_the_files_of_an_sbom_serialized_by_poky() {
        // Written by poky's own SPDX 3.0 library (tests/fixtures/image_sbom.py).
        let text = include_str!("../tests/fixtures/image-sbom.spdx.json");
        let files = file_digests(text.as_bytes()).unwrap();
        let want: BTreeMap<String, Vec<String>> = [
            ("IMAGE_FILE_NAME".to_owned(), vec!["0".repeat(64)]),
            ("usr/sbin/secretvm-guest".to_owned(), vec!["1".repeat(64)]),
        ]
        .into();
        assert_eq!(files, want);
        check_image(&files, "IMAGE_FILE_NAME", &"0".repeat(64)).unwrap();
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let err = |bytes: &[u8]| file_digests(bytes).unwrap_err().to_string();
        assert!(err(b"{").starts_with("not JSON: "));
        assert_eq!(
            err(br#"{"@graph":[]}"#),
            "not an SPDX 3.0 JSON-LD document: it has no @context"
        );
        assert_eq!(
            err(br#"{"@context":"https://spdx.org/rdf/2.2/x.jsonld","@graph":[]}"#),
            "not an SPDX 3.0 JSON-LD document: its @context is [\"https://spdx.org/rdf/2.2/x.jsonld\"], expected https://spdx.org/rdf/3.0.<minor>/spdx-context.jsonld"
        );
        assert_eq!(
            err(br#"{"@context":"https://spdx.org/rdf/3.0.1/spdx-context.jsonld"}"#),
            "not an SPDX 3.0 JSON-LD document: it has no @graph array"
        );
        assert_eq!(
            err(&sbom(&format!("{{}},{}", file("a.cpio", "12")))),
            "@graph[1]: a.cpio: sha256 hashValue \"12\", expected 64 hex digits"
        );
        assert_eq!(
            err(&sbom(r#"{"type":"software_File"}"#)),
            "@graph[0]: a software_File without a name"
        );
    }

    #[test]
    fn the_image_must_be_listed_with_its_digest_only() {
        let (a, b) = ("a".repeat(64), "B".repeat(64));
        let files = file_digests(&sbom(&format!(
            "{},{},{}",
            file("img.rootfs-v1.cpio", &a),
            file("usr/bin/true", &b),
            file("img.rootfs-v1.wic", &b)
        )))
        .unwrap();
        assert_eq!(files["img.rootfs-v1.wic"], ["b".repeat(64)]);
        check_image(&files, "img.rootfs-v1.cpio", &a).unwrap();
        assert_eq!(
            check_image(&files, "img.rootfs-v1.cpio", &"c".repeat(64)).unwrap_err().to_string(),
            format!(
                "it gives img.rootfs-v1.cpio the SHA-256 {a}, but the collected image has {}: it describes another build of the image",
                "c".repeat(64)
            )
        );
        assert_eq!(
            check_image(&files, "img.rootfs-v2.cpio", &a).unwrap_err().to_string(),
            "it lists no software_File named \"img.rootfs-v2.cpio\" (the image's file); it lists img.rootfs-v1.cpio, img.rootfs-v1.wic"
        );
        // Two elements of the image's name that disagree: refused.
        let twice =
            file_digests(&sbom(&format!("{},{}", file("i.cpio", &a), file("i.cpio", &b)))).unwrap();
        assert!(check_image(&twice, "i.cpio", &a).is_err());
    }
}
