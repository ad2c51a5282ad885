//! Bounds-checked little-endian reads from untrusted bytes, and GUIDs in their on-disk form.

use crate::{Error, Result};

/// The `n` bytes at `offset`, or [`Error::Truncated`] naming `what`.
pub(crate) fn slice<'a>(
    bytes: &'a [u8],
    offset: u64,
    n: u64,
    what: &'static str,
) -> Result<&'a [u8]> {
    let truncated = || Error::Truncated { what, offset, needed: n, len: bytes.len() as u64 };
    let start = usize::try_from(offset).map_err(|_| truncated())?;
    let len = usize::try_from(n).map_err(|_| truncated())?;
    let end = start.checked_add(len).ok_or_else(truncated)?;
    bytes.get(start..end).ok_or_else(truncated)
}

/// A fixed-size array at `offset`.
pub(crate) fn array<const N: usize>(
    bytes: &[u8],
    offset: u64,
    what: &'static str,
) -> Result<[u8; N]> {
    let s = slice(bytes, offset, N as u64, what)?;
    let mut out = [0u8; N];
    out.copy_from_slice(s);
    Ok(out)
}

/// A little-endian `u16` at `offset`.
pub(crate) fn u16_at(bytes: &[u8], offset: u64, what: &'static str) -> Result<u16> {
    array(bytes, offset, what).map(u16::from_le_bytes)
}

/// A little-endian `u32` at `offset`.
pub(crate) fn u32_at(bytes: &[u8], offset: u64, what: &'static str) -> Result<u32> {
    array(bytes, offset, what).map(u32::from_le_bytes)
}

/// A little-endian `u64` at `offset`.
pub(crate) fn u64_at(bytes: &[u8], offset: u64, what: &'static str) -> Result<u64> {
    array(bytes, offset, what).map(u64::from_le_bytes)
}

/// A GUID in the mixed-endian byte order UEFI stores it in ("bytes_le"): the first three
/// groups little-endian, the last eight bytes as written.
pub(crate) const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
}

/// `a + b`, or [`Error::Overflow`] naming `what`.
pub(crate) fn add(a: u64, b: u64, what: &'static str) -> Result<u64> {
    a.checked_add(b).ok_or(Error::Overflow { what })
}

/// `a - b`, or [`Error::Overflow`] naming `what`.
pub(crate) fn sub(a: u64, b: u64, what: &'static str) -> Result<u64> {
    a.checked_sub(b).ok_or(Error::Overflow { what })
}

/// `a * b`, or [`Error::Overflow`] naming `what`.
pub(crate) fn mul(a: u64, b: u64, what: &'static str) -> Result<u64> {
    a.checked_mul(b).ok_or(Error::Overflow { what })
}
