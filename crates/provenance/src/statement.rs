//! The in-toto statement inside a verified DSSE envelope: subjects and predicate type.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::digest::ArtifactDigest;
use crate::error::{Error, Result};

/// The most subjects a statement may have (sigstore-go caps subjects too).
pub const MAX_SUBJECTS: usize = 10_000;

/// The statement types accepted in `_type`.
const STATEMENT_TYPES: &[&str] =
    &["https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"];

#[derive(Deserialize)]
struct RawStatement {
    #[serde(rename = "_type")]
    type_: String,
    subject: Vec<RawSubject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
}

#[derive(Deserialize)]
struct RawSubject {
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

/// A parsed statement: the JSON value for output, plus what verification reads.
pub(crate) struct Statement {
    pub(crate) value: serde_json::Value,
    pub(crate) predicate_type: String,
    subjects: Vec<BTreeMap<String, String>>,
}

/// Parses an (already authenticated) DSSE payload as an in-toto statement.
pub(crate) fn parse(payload: &[u8]) -> Result<Statement> {
    let value: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| Error::Statement { detail: format!("payload is not JSON: {e}") })?;
    let raw = RawStatement::deserialize(&value).map_err(|e| Error::Statement {
        detail: format!("payload is not an in-toto statement: {e}"),
    })?;
    if !STATEMENT_TYPES.contains(&raw.type_.as_str()) {
        return Err(Error::Statement {
            detail: format!("_type is {:?}, expected one of {STATEMENT_TYPES:?}", raw.type_),
        });
    }
    if raw.subject.is_empty() || raw.subject.len() > MAX_SUBJECTS {
        return Err(Error::Statement {
            detail: format!(
                "statement has {} subjects, expected 1 to {MAX_SUBJECTS}",
                raw.subject.len()
            ),
        });
    }
    Ok(Statement {
        value,
        predicate_type: raw.predicate_type,
        subjects: raw.subject.into_iter().map(|s| s.digest).collect(),
    })
}

impl Statement {
    /// Checks that `artifact` is the digest of at least one subject (any subject may match).
    pub(crate) fn check_subject(&self, artifact: &ArtifactDigest) -> Result<()> {
        let want = artifact.hex();
        let alg = artifact.algorithm().name();
        let found = self
            .subjects
            .iter()
            .any(|d| d.get(alg).is_some_and(|hex| hex.eq_ignore_ascii_case(&want)));
        if found {
            Ok(())
        } else {
            Err(Error::SubjectDigest {
                artifact: artifact.to_string(),
                subjects: self.subjects.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Check;

    fn statement(subjects: &str) -> String {
        format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":{subjects},"predicateType":"p","predicate":{{}}}}"#
        )
    }

    #[test]
    fn any_subject_matches_and_others_do_not() {
        let a = "aa".repeat(32);
        let b = "bb".repeat(32);
        let s = parse(
            statement(&format!(
                r#"[{{"name":"x","digest":{{"sha256":"{a}"}}}},{{"digest":{{"sha256":"{b}"}}}}]"#
            ))
            .as_bytes(),
        )
        .unwrap();
        s.check_subject(&format!("sha256:{b}").parse().unwrap()).unwrap();
        let err =
            s.check_subject(&format!("sha256:{}", "cc".repeat(32)).parse().unwrap()).unwrap_err();
        assert_eq!(err.check(), Check::SubjectDigest);
        // The same hex under another algorithm is not a match.
        let err = s.check_subject(&format!("sha512:{a}{a}").parse().unwrap()).unwrap_err();
        assert_eq!(err.check(), Check::SubjectDigest);
    }

    #[test]
    fn rejects_non_statements() {
        for bad in [
            "null".to_owned(),
            "{}".to_owned(),
            statement("[]"),
            statement(r#"[{"digest":{"sha256":"00"}}]"#).replace("Statement/v1", "Statement/v9"),
        ] {
            assert_eq!(
                parse(bad.as_bytes()).err().map(|e| e.check()),
                Some(Check::Statement),
                "{bad}"
            );
        }
    }
}
