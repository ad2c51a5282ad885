//! The error type of the crate: which file, which key, on which line, what was found and what
//! was expected.

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong when reading the build config or the lock file.
///
/// `file` is the name the caller gave the parser (for messages only: nothing is opened), `line`
/// is 1-based, and `key` is a TOML path such as `machine[1].tmpdir`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not valid TOML, or a key has the wrong TOML type or is missing.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file name given by the caller.
        file: String,
        /// The line of the problem.
        line: usize,
        /// The column of the problem, 1-based.
        column: usize,
        /// The TOML parser's message.
        message: String,
    },

    /// A value is present but not acceptable.
    #[error("{file}:{line}: {key} is {found:?}, expected {expected}")]
    Invalid {
        /// The file name given by the caller.
        file: String,
        /// The line of the value.
        line: usize,
        /// The key, as a TOML path.
        key: String,
        /// The value found.
        found: String,
        /// What was expected.
        expected: String,
    },

    /// A name that must be unique appears twice.
    #[error("{file}:{line}: {key} {name:?} is already defined on line {first_line}")]
    Duplicate {
        /// The file name given by the caller.
        file: String,
        /// The line of the second definition.
        line: usize,
        /// The key, as a TOML path.
        key: String,
        /// The repeated name.
        name: String,
        /// The line of the first definition.
        first_line: usize,
    },

    /// A reference names something the file does not define.
    #[error("{file}:{line}: {key} is {name:?}, expected one of {}", known.join(", "))]
    Unknown {
        /// The file name given by the caller.
        file: String,
        /// The line of the reference.
        line: usize,
        /// The key, as a TOML path.
        key: String,
        /// The unknown name.
        name: String,
        /// The names that are defined.
        known: Vec<String>,
    },

    /// A template from the pinned poky checkout does not have the shape we rewrite.
    #[error("{what}: expected {expected}")]
    Template {
        /// The template.
        what: &'static str,
        /// What was expected in it.
        expected: &'static str,
    },

    /// A value given on the command line is not acceptable.
    #[error("{what} is {found:?}, expected {expected}")]
    BadArgument {
        /// What it is (a flag).
        what: &'static str,
        /// What was given.
        found: String,
        /// What is accepted.
        expected: &'static str,
    },

    /// A machine asked for by name (for example on the command line) is not in the config.
    #[error("unknown machine {name:?}, expected one of {}", known.join(", "))]
    UnknownMachine {
        /// The name asked for.
        name: String,
        /// The machines the config defines, in declared order.
        known: Vec<String>,
    },
    /// An artifact asked for by name (`--artifact`) is in none of the selected machines.
    #[error(
        "unknown artifact {name:?} for machine(s) {}, expected one of {}",
        machines.join(", "),
        known.join(", ")
    )]
    UnknownArtifact {
        /// The name asked for.
        name: String,
        /// The selected machines.
        machines: Vec<String>,
        /// Their artifacts, in declared order.
        known: Vec<String>,
    },
    /// A machine asked for by name has none of the artifacts asked for.
    #[error(
        "machine {machine:?} has none of the artifacts asked for ({}); it has {}",
        asked.join(", "),
        known.join(", ")
    )]
    NoSelectedArtifact {
        /// The machine.
        machine: String,
        /// The artifacts asked for.
        asked: Vec<String>,
        /// The machine's artifacts, in declared order.
        known: Vec<String>,
    },
}

/// The 1-based line and column of byte offset `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
    (line, column)
}

/// Turns a TOML parse or type error into [`Error::Syntax`].
pub(crate) fn syntax(file: &str, text: &str, err: &toml::de::Error) -> Error {
    let (line, column) = err.span().map_or((1, 1), |span| line_col(text, span.start));
    Error::Syntax {
        file: file.to_owned(),
        line,
        column,
        message: err.message().trim_end().to_owned(),
    }
}

/// A recipe name (PN) as the lock and the config accept it: letters, digits, `-`, `_`, `.`, `+`.
pub(crate) fn is_recipe_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
}

/// `SRCREV` or `SRCREV_<name>`, the variables a recipe names its source commits in.
pub(crate) fn is_srcrev_variable(s: &str) -> bool {
    s == "SRCREV"
        || s.strip_prefix("SRCREV_").is_some_and(|n| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        })
}

/// Whether `s` is a full git commit id: 40 lowercase hex digits.
pub(crate) fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What a commit must look like, for [`Error::Invalid`].
pub(crate) const COMMIT: &str =
    "a full commit id: 40 lowercase hex digits (no branch, tag or short id)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("a\nbc\nd", 0), (1, 1));
        assert_eq!(line_col("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_col("a\nbc\nd", 5), (3, 1));
        assert_eq!(line_col("a", 99), (1, 2));
    }

    #[test]
    fn commits_are_forty_lowercase_hex() {
        assert!(is_commit("d243dbc41b52d3bb5a6037c40aa0c502a1800b64"));
        assert!(!is_commit("d243dbc41b"));
        assert!(!is_commit("D243DBC41B52D3BB5A6037C40AA0C502A1800B64"));
        assert!(!is_commit("scarthgap"));
    }
}
