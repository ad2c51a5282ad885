//! ISO 9660 dates from seconds since the Unix epoch, always in UTC (offset 0).
//!
//! ECMA-119 9.1.5 (7-byte directory record date: years since 1900, month, day, hour, minute,
//! second, offset in 15-minute units) and 8.4.26.1 (17-byte volume date: `YYYYMMDDhhmmsscc` in
//! ASCII digits plus the offset).

use super::{Error, Result};
use crate::time::civil;

/// The 7-byte directory record date of `seconds` (ECMA-119 9.1.5), for years 1970 to 2155.
pub(super) fn record_date(what: &'static str, seconds: u64) -> Result<[u8; 7]> {
    let c = civil(seconds);
    let years = c
        .year
        .checked_sub(1900)
        .and_then(|y| u8::try_from(y).ok())
        .ok_or(Error::TimeOutOfRange { what, seconds })?;
    Ok([years, c.month, c.day, c.hour, c.minute, c.second, 0])
}

/// The 17-byte volume descriptor date of `seconds` (ECMA-119 8.4.26.1), for years up to 9999.
pub(super) fn volume_date(what: &'static str, seconds: u64) -> Result<[u8; 17]> {
    let c = civil(seconds);
    if c.year > 9999 {
        return Err(Error::TimeOutOfRange { what, seconds });
    }
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}00",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(text.as_bytes());
    Ok(out)
}

/// The "not specified" volume date: sixteen `0` digits and offset 0 (ECMA-119 8.4.26.1).
pub(super) const UNSPECIFIED_VOLUME_DATE: [u8; 17] = *b"0000000000000000\0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_xorriso_sample() {
        // sample.iso (SOURCE_DATE_EPOCH=1650000000): PVD "2022041505200000", records 7a 04 0f 05 14 00 00.
        assert_eq!(&volume_date("t", 1_650_000_000).unwrap()[..16], b"2022041505200000");
        assert_eq!(record_date("t", 1_650_000_000).unwrap(), [0x7a, 4, 15, 5, 20, 0, 0]);
        // `date -u -d @1700000000` prints 2023-11-14 22:13:20.
        assert_eq!(record_date("t", 1_700_000_000).unwrap(), [123, 11, 14, 22, 13, 20, 0]);
        // `date -u -d @951782400` prints 2000-02-29 00:00:00 (a leap day of a century year).
        assert_eq!(record_date("t", 951_782_400).unwrap(), [100, 2, 29, 0, 0, 0, 0]);
        assert_eq!(record_date("t", 0).unwrap(), [70, 1, 1, 0, 0, 0, 0]);
        // `date -u -d @5900000000` is in 2156, which does not fit in a byte of years since 1900.
        assert!(record_date("t", 5_900_000_000).is_err());
        assert!(record_date("t", 5_869_094_400).is_ok());
    }
}
