//! Digest newtypes that print as lowercase hex and serialize as hex strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::hasher::Sha384;

use crate::{Error, Result};

macro_rules! digest_newtype {
    ($name:ident, $len:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The digest's length in bytes.
            pub const LEN: usize = $len;

            /// The raw digest bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Parses `hex` (exactly twice [`Self::LEN`] hex digits); `field` names the input in
            /// the error.
            pub fn from_hex(field: &'static str, hex: &str) -> Result<Self> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(hex.trim(), &mut out).map_err(|_| Error::BadParameter {
                    field,
                    expected: concat!(stringify!($len), " bytes as hex"),
                    actual: hex.to_owned(),
                })?;
                Ok(Self(out))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::from_hex(stringify!($name), s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

digest_newtype!(
    Sha384Digest,
    48,
    "A SHA-384 digest: TDX MRTD, RTMRs and event digests, the SNP launch digest."
);
digest_newtype!(
    Sha256Digest,
    32,
    "A SHA-256 digest: the kernel, initrd and cmdline entries of the SEV hashes table."
);

/// SHA-384 of `data`.
pub fn sha384(data: &[u8]) -> Sha384Digest {
    Sha384Digest(Sha384::digest(data))
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Sha256Digest {
    Sha256Digest(Sha256::digest(data).into())
}
