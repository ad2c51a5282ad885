//! The Linux kernel's `gen_init_cpio` description format, parsed into initramfs nodes.
//!
//! One entry per line, fields separated by white space, `#` starts a comment line:
//!
//! ```text
//! file  <name> <location> <mode> <uid> <gid> [<hard link name> ...]
//! dir   <name> <mode> <uid> <gid>
//! nod   <name> <mode> <uid> <gid> <b|c> <major> <minor>
//! slink <name> <target> <mode> <uid> <gid>
//! pipe  <name> <mode> <uid> <gid>
//! sock  <name> <mode> <uid> <gid>
//! ```
//!
//! `<mode>` is octal (permission bits only), `<uid>`, `<gid>`, `<major>` and `<minor>` decimal.
//! `<location>` is kept as written; the loader resolves it (relative to the spec file).
//! Unlike `gen_init_cpio`, every entry, files included, gets the same modification time (the
//! caller's `mtime`, normally `SOURCE_DATE_EPOCH`), so the archive does not depend on when the
//! source files were checked out. Environment-variable expansion in locations is not supported.

use crate::initramfs::{Kind, Node};

/// A line of the description that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem} (in `{text}`)")]
pub struct Error {
    /// 1-based line number.
    pub line: usize,
    /// The offending line.
    pub text: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Parses a `gen_init_cpio` description. File nodes carry their `<location>` as the source.
/// Every node gets modification time `mtime`.
pub fn parse(text: &str, mtime: u64) -> Result<Vec<Node<String>>, Error> {
    let mut nodes = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |problem: String| Error { line: index + 1, text: raw.to_string(), problem };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (keyword, args) = (fields[0], &fields[1..]);
        let expect = |n: usize, usage: &str| {
            if args.len() == n {
                Ok(())
            } else {
                Err(fail(format!("expected `{keyword} {usage}`")))
            }
        };
        let octal = |s: &str, what: &str| {
            u32::from_str_radix(s, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| fail(format!("{what} {s:?} is not an octal mode of at most 7777")))
        };
        let decimal = |s: &str, what: &str| {
            s.parse::<u32>().map_err(|e| fail(format!("{what} {s:?} is not a 32-bit number: {e}")))
        };
        let node = |path: &str, kind, mode: &str, uid: &str, gid: &str| -> Result<_, Error> {
            Ok(Node {
                path: path.to_string(),
                kind,
                permissions: octal(mode, "mode")?,
                uid: decimal(uid, "uid")?,
                gid: decimal(gid, "gid")?,
                mtime,
                link_group: None,
            })
        };
        match keyword {
            "file" => {
                if args.len() < 5 {
                    return Err(fail(
                        "expected `file <name> <location> <mode> <uid> <gid> [<hard links>]`"
                            .into(),
                    ));
                }
                let kind = Kind::File { source: args[1].to_string() };
                let mut first = node(args[0], kind, args[2], args[3], args[4])?;
                let links = &args[5..];
                first.link_group = (!links.is_empty()).then_some(index as u64 + 1);
                nodes.push(first.clone());
                for name in links {
                    nodes.push(Node { path: (*name).to_string(), ..first.clone() });
                }
            }
            "dir" => {
                expect(4, "<name> <mode> <uid> <gid>")?;
                nodes.push(node(args[0], Kind::Directory, args[1], args[2], args[3])?);
            }
            "nod" => {
                expect(7, "<name> <mode> <uid> <gid> <b|c> <major> <minor>")?;
                let (major, minor) = (decimal(args[5], "major")?, decimal(args[6], "minor")?);
                let kind = match args[4] {
                    "b" => Kind::BlockDevice { major, minor },
                    "c" => Kind::CharDevice { major, minor },
                    other => return Err(fail(format!("device type {other:?} is not `b` or `c`"))),
                };
                nodes.push(node(args[0], kind, args[1], args[2], args[3])?);
            }
            "slink" => {
                expect(5, "<name> <target> <mode> <uid> <gid>")?;
                let kind = Kind::Symlink { target: args[1].to_string() };
                nodes.push(node(args[0], kind, args[2], args[3], args[4])?);
            }
            "pipe" | "sock" => {
                expect(4, "<name> <mode> <uid> <gid>")?;
                let kind = if keyword == "pipe" { Kind::Fifo } else { Kind::Socket };
                nodes.push(node(args[0], kind, args[1], args[2], args[3])?);
            }
            other => {
                return Err(fail(format!(
                    "unknown entry type {other:?} (expected file, dir, nod, slink, pipe or sock)"
                )));
            }
        }
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_entry_type() {
        let text = "\
# comment
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/sda 0660 0 6 b 8 0
file /init init.sh 0755 0 0
file /bin/a src/a 4755 1000 1000 /bin/b /sbin/c
slink /bin/sh busybox 0777 0 0
pipe /run/fifo 0644 0 0
sock /run/sock 0600 0 0
";
        let nodes = parse(text, 7).unwrap();
        let summary: Vec<String> = nodes
            .iter()
            .map(|n| {
                format!(
                    "{} {:?} {:o} {}:{} {} {:?}",
                    n.path, n.kind, n.permissions, n.uid, n.gid, n.mtime, n.link_group
                )
            })
            .collect();
        expect_test::expect![[r#"
            [
                "/dev Directory 755 0:0 7 None",
                "/dev/console CharDevice { major: 5, minor: 1 } 600 0:0 7 None",
                "/dev/sda BlockDevice { major: 8, minor: 0 } 660 0:6 7 None",
                "/init File { source: \"init.sh\" } 755 0:0 7 None",
                "/bin/a File { source: \"src/a\" } 4755 1000:1000 7 Some(6)",
                "/bin/b File { source: \"src/a\" } 4755 1000:1000 7 Some(6)",
                "/sbin/c File { source: \"src/a\" } 4755 1000:1000 7 Some(6)",
                "/bin/sh Symlink { target: \"busybox\" } 777 0:0 7 None",
                "/run/fifo Fifo 644 0:0 7 None",
                "/run/sock Socket 600 0:0 7 None",
            ]
        "#]]
        .assert_debug_eq(&summary);
    }

    #[test]
    fn rejects_malformed_lines_with_their_line_number() {
        let cases = [
            ("dir /a 0755 0", 1, "expected `dir <name> <mode> <uid> <gid>`"),
            ("\n\nnod /x 0600 0 0 d 1 1", 3, "device type \"d\" is not `b` or `c`"),
            ("dir /a 0758 0 0", 1, "mode \"0758\" is not an octal mode of at most 7777"),
            ("dir /a 17777 0 0", 1, "mode \"17777\" is not an octal mode of at most 7777"),
            ("file /a", 1, "expected `file <name> <location> <mode> <uid> <gid> [<hard links>]`"),
            (
                "slink /a b 0777 x 0",
                1,
                "uid \"x\" is not a 32-bit number: invalid digit found in string",
            ),
            (
                "# c\nfifo /a 0644 0 0",
                2,
                "unknown entry type \"fifo\" (expected file, dir, nod, slink, pipe or sock)",
            ),
        ];
        for (text, line, problem) in cases {
            let err = parse(text, 0).unwrap_err();
            assert_eq!((err.line, err.problem.as_str()), (line, problem), "for {text:?}");
        }
    }
}
