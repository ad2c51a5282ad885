//! `secretvm pack cpio-list`: one line per entry, in the columns of `cpio -tv --numeric-uid-gid`
//! (times in UTC, ISO 8601), or a JSON array of the raw header fields.

use std::io::{BufRead, BufReader, Read, Write};

use anyhow::Result;
use flate2::read::MultiGzDecoder;
use secretvm_pack::cpio::{FileType, Header, Reader};

use crate::cli::Format;

/// Lists the archive read from `input` (gzip-compressed or not) into `out`.
pub(crate) fn list(input: impl Read, format: Format, mut out: impl Write) -> Result<()> {
    let mut buffered = BufReader::with_capacity(1 << 16, input);
    let gzipped = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let stream: Box<dyn Read> =
        if gzipped { Box::new(MultiGzDecoder::new(buffered)) } else { Box::new(buffered) };
    let mut reader = Reader::new(stream);
    let mut first = true;
    if format == Format::Json {
        write!(out, "[")?;
    }
    while let Some(mut entry) = reader.next_entry()? {
        let header = entry.header().clone();
        let target = match header.file_type() {
            Some(FileType::Symlink) => Some(entry.read_symlink_target()?),
            _ => None,
        };
        match format {
            Format::Text => writeln!(out, "{}", text_line(&header, target.as_deref()))?,
            Format::Json => {
                let value = serde_json::json!({
                    "offset": entry.offset(),
                    "name": header.name,
                    "ino": header.ino,
                    "mode": format!("{:o}", header.mode),
                    "uid": header.uid,
                    "gid": header.gid,
                    "nlink": header.nlink,
                    "mtime": header.mtime,
                    "size": header.file_size,
                    "dev": [header.dev_major, header.dev_minor],
                    "rdev": [header.rdev_major, header.rdev_minor],
                    "check": header.check,
                    "target": target,
                });
                write!(out, "{}\n  {value}", if first { "" } else { "," })?;
            }
        }
        first = false;
    }
    if format == Format::Json {
        writeln!(out, "\n]")?;
    }
    out.flush()?;
    Ok(())
}

/// `drwxr-xr-x   2 0        0               0 2023-11-14 22:13:20 name -> target`
fn text_line(h: &Header, target: Option<&str>) -> String {
    let size = match h.file_type() {
        Some(FileType::CharDevice | FileType::BlockDevice) => {
            format!("{:>3}, {:>3}", h.rdev_major, h.rdev_minor)
        }
        _ => h.file_size.to_string(),
    };
    let mut line = format!(
        "{} {:>3} {:<8} {:<8} {:>8} {} {}",
        mode_string(h.mode),
        h.nlink,
        h.uid,
        h.gid,
        size,
        utc(h.mtime.into()),
        h.name
    );
    if let Some(target) = target {
        line.push_str(" -> ");
        line.push_str(target);
    }
    line
}

/// `ls -l`'s ten-character mode: type, then rwx for owner, group, others with s/S/t/T.
fn mode_string(mode: u32) -> String {
    let kind = match FileType::from_mode(mode) {
        Some(FileType::Regular) => '-',
        Some(FileType::Directory) => 'd',
        Some(FileType::Symlink) => 'l',
        Some(FileType::CharDevice) => 'c',
        Some(FileType::BlockDevice) => 'b',
        Some(FileType::Fifo) => 'p',
        Some(FileType::Socket) => 's',
        None => '?',
    };
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let special = |exec: bool, set: bool, lower: char, upper: char| match (exec, set) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => 'x',
        (false, false) => '-',
    };
    [
        kind,
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        special(mode & 0o100 != 0, mode & 0o4000 != 0, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        special(mode & 0o010 != 0, mode & 0o2000 != 0, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        special(mode & 0o001 != 0, mode & 0o1000 != 0, 't', 'T'),
    ]
    .iter()
    .collect()
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS` in UTC.
fn utc(seconds: u64) -> String {
    let c = secretvm_pack::time::civil(seconds);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings_match_ls() {
        // Expected strings as `ls -l` prints them for these modes (coreutils' filemode rules).
        let cases = [
            (0o104755, "-rwsr-xr-x"),
            (0o102755, "-rwxr-sr-x"),
            (0o041777, "drwxrwxrwt"),
            (0o040700, "drwx------"),
            (0o100444, "-r--r--r--"),
            (0o120777, "lrwxrwxrwx"),
            (0o020620, "crw--w----"),
            (0o060660, "brw-rw----"),
            (0o010644, "prw-r--r--"),
            (0o140755, "srwxr-xr-x"),
            (0o104644, "-rwSr--r--"),
            (0o041776, "drwxrwxrwT"),
        ];
        for (mode, want) in cases {
            assert_eq!(mode_string(mode), want, "mode {mode:o}");
        }
    }

    #[test]
    fn utc_dates_match_date_1() {
        // Expected values from `date -u -d @N '+%F %T'` (GNU coreutils).
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc(1_650_000_000), "2022-04-15 05:20:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(4_294_967_295), "2106-02-07 06:28:15");
    }
}
