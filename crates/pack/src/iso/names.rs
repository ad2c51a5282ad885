//! ISO 9660 level-3 identifiers for Rock Ridge names, made as libisofs (xorriso 1.5.4) makes them
//! with `-iso-level 3 -full-iso9660-filenames`, so that our directory order is xorriso's.
//!
//! 1. Each character that is not ASCII becomes `_` (one per character, not per byte).
//! 2. Lowercase letters become uppercase; any other byte outside the d-characters (`A`–`Z`,
//!    `0`–`9`, `_`) becomes `_`.
//! 3. Files: the text after the last dot is the extension (none when the dot is last). When the
//!    whole name is longer than 31 bytes, an extension longer than 3 keeps `30 - len(name)` but at
//!    least 3 characters, and the name part is cut so that name plus extension is 30. Dots in the
//!    name part become `_`; a dot always separates name and extension (`README.`). The version
//!    `;1` is added when the record is written.
//! 4. Directories: as files, but with a dot only when there is an extension (xorriso's
//!    `-as mkisofs` allows extensions in directory identifiers): `gettext-0.21` is
//!    `GETTEXT_0.21`, `empty-dir` is `EMPTY_DIR`.
//! 5. Siblings whose identifiers are equal (compared as bytes) are renamed in the byte order of
//!    their Rock Ridge names: the tail of the name part is replaced by a counter of `digits`
//!    decimal digits (from 1 up to 7), counting from 0 and skipping identifiers already taken.

use std::collections::HashSet;

/// The longest file identifier without the version: 30 d-characters and the dot.
const FILE_ID_MAX: usize = 31;
/// The longest directory identifier.
const DIR_ID_MAX: usize = 31;

/// Maps a byte to its d-character: uppercase, or `_`.
fn d_char(byte: u8) -> u8 {
    let upper = byte.to_ascii_uppercase();
    if upper.is_ascii_uppercase() || upper.is_ascii_digit() || upper == b'_' { upper } else { b'_' }
}

/// The name with every non-ASCII character replaced by `_`.
fn ascii(name: &str) -> Vec<u8> {
    name.chars().map(|c| if c.is_ascii() { c as u8 } else { b'_' }).collect()
}

/// The identifier of a directory named `name`: as a file's, but without a forced dot.
pub(super) fn dir_id(name: &str) -> Vec<u8> {
    fileid(name, false)
}

/// The identifier of a non-directory named `name`, without the `;1` version.
pub(super) fn file_id(name: &str) -> Vec<u8> {
    fileid(name, true)
}

/// libisofs's level-2/3 identifier: name and extension within 30 characters, a dot between
/// them when there is an extension or `force_dot` is set.
fn fileid(name: &str, force_dot: bool) -> Vec<u8> {
    let src = ascii(name);
    let max = FILE_ID_MAX - 1;
    let dot = src.iter().rposition(|&b| b == b'.').filter(|&d| d + 1 < src.len());
    let (name_part, ext_part): (&[u8], &[u8]) = match dot {
        None => (&src[..src.len().min(max)], &[]),
        Some(d) => {
            let (name, ext) = (&src[..d], &src[d + 1..]);
            let too_long = src.len() > max + 1;
            let ext_len = if too_long && ext.len() > 3 {
                if name.len() < max - 3 { max - name.len() } else { 3 }
            } else {
                ext.len()
            };
            let name_len = if too_long { max - ext_len } else { name.len() };
            (&name[..name_len.min(name.len())], &ext[..ext_len.min(ext.len())])
        }
    };
    let mut id: Vec<u8> = name_part.iter().copied().map(d_char).collect();
    if force_dot || !ext_part.is_empty() {
        id.push(b'.');
    }
    id.extend(ext_part.iter().copied().map(d_char));
    id
}

/// One child of a directory, as the mangling sees it.
#[derive(Debug)]
pub(super) struct Child<'a> {
    /// The identifier, replaced in place when it collides.
    pub(super) id: Vec<u8>,
    /// The Rock Ridge name, which orders colliding siblings.
    pub(super) name: &'a str,
    /// Whether the child is a directory (no extension is kept).
    pub(super) is_dir: bool,
}

/// Sorts `children` by identifier (then Rock Ridge name) and renames collisions.
///
/// Returns the identifier that could not be made unique, if any.
pub(super) fn mangle(children: &mut [Child<'_>]) -> Result<(), Vec<u8>> {
    sort(children);
    let mut taken: HashSet<Vec<u8>> = children.iter().map(|c| c.id.clone()).collect();
    let mut changed = false;
    let mut i = 0;
    while i < children.len() {
        let mut j = i;
        while j + 1 < children.len() && children[j + 1].id == children[i].id {
            j += 1;
        }
        if j == i {
            i += 1;
            continue;
        }
        let mut done = false;
        for digits in 1..=7u32 {
            if let Some(new_ids) = try_digits(&children[i..=j], &taken, digits) {
                for (child, id) in children[i..=j].iter_mut().zip(new_ids) {
                    taken.remove(&child.id);
                    taken.insert(id.clone());
                    child.id = id;
                }
                done = true;
                break;
            }
        }
        if !done {
            return Err(children[i].id.clone());
        }
        changed = true;
        i = j + 1;
    }
    if changed {
        sort(children);
    }
    Ok(())
}

/// Sorts by identifier bytes, then by Rock Ridge name bytes.
fn sort(children: &mut [Child<'_>]) {
    children.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.name.as_bytes().cmp(b.name.as_bytes())));
}

/// New identifiers for a group of equal ones with a counter of `digits` digits, or `None` when
/// the counter runs out.
fn try_digits(group: &[Child<'_>], taken: &HashSet<Vec<u8>>, digits: u32) -> Option<Vec<Vec<u8>>> {
    let first = group.first()?;
    let digits_usize = digits as usize;
    let (stem, ext): (Vec<u8>, Option<Vec<u8>>) = match first.id.iter().rposition(|&b| b == b'.') {
        Some(dot) => {
            let mut ext = first.id[dot + 1..].to_vec();
            let mut stem_max = FILE_ID_MAX.checked_sub(ext.len() + 1 + digits_usize);
            if stem_max.is_none_or(|m| m == 0) {
                // Give the name room by shortening a long extension, keeping at least 3.
                let new_ext = FILE_ID_MAX.checked_sub(2 + digits_usize)?.min(ext.len());
                if new_ext < 3 {
                    return None;
                }
                ext.truncate(new_ext);
                stem_max = FILE_ID_MAX.checked_sub(ext.len() + 1 + digits_usize);
            }
            let stem_max = stem_max?;
            let mut stem = first.id[..dot].to_vec();
            stem.truncate(stem_max);
            (stem, Some(ext))
        }
        None => {
            let max = if first.is_dir { DIR_ID_MAX } else { FILE_ID_MAX };
            let mut stem = first.id.clone();
            stem.truncate(max.checked_sub(digits_usize)?);
            (stem, None)
        }
    };
    let limit = 10u32.checked_pow(digits)?;
    let mut counter = 0u32;
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(group.len());
    let mut chosen: HashSet<Vec<u8>> = HashSet::with_capacity(group.len());
    for _ in group {
        loop {
            if counter >= limit {
                return None;
            }
            let mut id = stem.clone();
            id.extend(format!("{counter:0width$}", width = digits_usize).bytes());
            if let Some(ext) = &ext {
                id.push(b'.');
                id.extend_from_slice(ext);
            }
            counter += 1;
            if !taken.contains(&id) && !chosen.contains(&id) {
                chosen.insert(id.clone());
                out.push(id);
                break;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: Vec<u8>) -> String {
        String::from_utf8(id).unwrap()
    }

    #[test]
    fn identifiers_match_xorriso_sample() {
        // Expected values: `isoinfo -l` of sample.iso (xorriso 1.5.4), without the ";1".
        assert_eq!(s(file_id(".hidden")), ".HIDDEN");
        assert_eq!(s(file_id("grüße-日本語-😀.txt")), "GR__E______.TXT");
        assert_eq!(s(file_id("hello.txt")), "HELLO.TXT");
        assert_eq!(s(file_id("hello-abs")), "HELLO_ABS.");
        assert_eq!(
            s(file_id(
                "long-name-long-name-long-name-long-name-long-name-long-name-long-name-end-of-a-name-longer-than-64-characters.conf"
            )),
            "LONG_NAME_LONG_NAME_LONG_NA.CON"
        );
        assert_eq!(s(file_id("multi.dot.name.tar.gz")), "MULTI_DOT_NAME_TAR.GZ");
        assert_eq!(s(file_id(&"n".repeat(251))), format!("{}.", "N".repeat(30)));
        assert_eq!(s(file_id("trailing.")), "TRAILING_.");
        assert_eq!(s(file_id("semi;colon")), "SEMI_COLON.");
        assert_eq!(s(file_id("with space")), "WITH_SPACE.");
        assert_eq!(s(dir_id("empty-dir")), "EMPTY_DIR");
        // Expected values: `isoinfo -l` of xorriso 1.5.4's image of /usr/share on Debian 12.
        assert_eq!(s(dir_id("gettext-0.21")), "GETTEXT_0.21");
        assert_eq!(s(dir_id("gir1.2-glib-2.0")), "GIR1_2_GLIB_2.0");
        assert_eq!(s(dir_id("google-cloud-cli-app-engine-java")), "GOOGLE_CLOUD_CLI_APP_ENGINE_JA");
    }

    #[test]
    fn collisions_match_xorriso_sample() {
        let names = [
            "readme",
            "README",
            "ReadMe",
            "this-name-shares-a-long-prefix-with-its-sibling-BBBB",
            "this-name-shares-a-long-prefix-with-its-sibling-AAAA",
        ];
        let mut children: Vec<Child<'_>> =
            names.iter().map(|n| Child { id: file_id(n), name: n, is_dir: false }).collect();
        mangle(&mut children).unwrap();
        let got: Vec<(String, &str)> = children.iter().map(|c| (s(c.id.clone()), c.name)).collect();
        assert_eq!(
            got,
            [
                ("README0.".to_owned(), "README"),
                ("README1.".to_owned(), "ReadMe"),
                ("README2.".to_owned(), "readme"),
                (
                    "THIS_NAME_SHARES_A_LONG_PREFI0.".to_owned(),
                    "this-name-shares-a-long-prefix-with-its-sibling-AAAA"
                ),
                (
                    "THIS_NAME_SHARES_A_LONG_PREFI1.".to_owned(),
                    "this-name-shares-a-long-prefix-with-its-sibling-BBBB"
                ),
            ]
        );
    }

    #[test]
    fn many_collisions_get_more_digits() {
        let names: Vec<String> = (0..150).map(|i| format!("{}-{i:03}", "a".repeat(40))).collect();
        let mut children: Vec<Child<'_>> =
            names.iter().map(|n| Child { id: file_id(n), name: n, is_dir: false }).collect();
        mangle(&mut children).unwrap();
        let ids: HashSet<&Vec<u8>> = children.iter().map(|c| &c.id).collect();
        assert_eq!(ids.len(), 150);
        assert!(children.iter().all(|c| c.id.len() <= FILE_ID_MAX));
    }
}
