//! Artifact digests: `sha256:<hex>` or `sha512:<hex>`, as gh's `--digest-alg` allows.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::Error;

/// A digest algorithm accepted for artifacts and statement subjects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestAlgorithm {
    /// SHA-256 (gh's default).
    Sha256,
    /// SHA-512 (npm provenance subjects are SHA-512 only).
    Sha512,
}

impl DigestAlgorithm {
    /// The name used in in-toto subjects and in `alg:hex` strings.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    /// The digest length in bytes.
    pub fn byte_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 32,
            DigestAlgorithm::Sha512 => 64,
        }
    }
}

/// The digest of an artifact to be matched against the statement's subjects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArtifactDigest {
    algorithm: DigestAlgorithm,
    bytes: Vec<u8>,
}

impl ArtifactDigest {
    /// A digest from its algorithm and bytes; an error if the length is wrong for the algorithm.
    pub fn new(algorithm: DigestAlgorithm, bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != algorithm.byte_len() {
            return Err(Error::Policy {
                detail: format!(
                    "a {} digest has {} bytes, {} given",
                    algorithm.name(),
                    algorithm.byte_len(),
                    bytes.len()
                ),
            });
        }
        Ok(ArtifactDigest { algorithm, bytes: bytes.to_vec() })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The digest bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The digest as lowercase hex.
    pub fn hex(&self) -> String {
        hex::encode(&self.bytes)
    }
}

impl fmt::Display for ArtifactDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex())
    }
}

impl FromStr for ArtifactDigest {
    type Err = Error;

    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>` (hex in either case).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Policy {
            detail: format!("artifact digest {s:?} is not sha256:<64 hex> or sha512:<128 hex>"),
        };
        let (alg, hex_part) = s.split_once(':').ok_or_else(bad)?;
        let algorithm = match alg {
            "sha256" => DigestAlgorithm::Sha256,
            "sha512" => DigestAlgorithm::Sha512,
            _ => return Err(bad()),
        };
        if hex_part.len() != algorithm.byte_len() * 2 {
            return Err(bad());
        }
        let bytes = hex::decode(hex_part).map_err(|_| bad())?;
        ArtifactDigest::new(algorithm, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_algorithms_and_rejects_the_rest() {
        let d: ArtifactDigest = format!("sha256:{}", "AB".repeat(32)).parse().unwrap();
        assert_eq!(d.to_string(), format!("sha256:{}", "ab".repeat(32)));
        let d: ArtifactDigest = format!("sha512:{}", "0f".repeat(64)).parse().unwrap();
        assert_eq!(d.algorithm(), DigestAlgorithm::Sha512);
        for bad in [
            "",
            "sha256",
            "sha256:",
            "md5:00",
            "sha1:0000000000000000000000000000000000000000",
            &format!("sha256:{}", "ab".repeat(31)),
            &format!("sha256:{}", "zz".repeat(32)),
            &format!("sha512:{}", "ab".repeat(32)),
        ] {
            assert!(bad.parse::<ArtifactDigest>().is_err(), "{bad:?} was accepted");
        }
    }
}
