//! Splitting a file into JSON documents the way gh reads `.jsonl` files (a decoder loop), with
//! size and count limits, handing each document's exact bytes to the parser.

use serde::de::IgnoredAny;

/// Splits `bytes` into the raw text of each top-level JSON document, in order.
///
/// Documents may be separated by any JSON whitespace, so this accepts one document per line
/// (with or without a final newline) as well as one pretty-printed document. `max_bytes` and
/// `max_docs` bound the work before anything is parsed.
pub(crate) fn documents(
    bytes: &[u8],
    max_bytes: usize,
    max_docs: usize,
) -> Result<Vec<&str>, String> {
    if bytes.len() > max_bytes {
        return Err(format!("{} bytes, expected at most {max_bytes}", bytes.len()));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<IgnoredAny>();
    let mut start = 0;
    while let Some(item) = stream.next() {
        item.map_err(|e| format!("document {} is not JSON: {e}", out.len() + 1))?;
        let end = stream.byte_offset();
        let doc = text.get(start..end).ok_or("document boundary is not a character boundary")?;
        if out.len() == max_docs {
            return Err(format!("more than {max_docs} documents"));
        }
        out.push(doc.trim());
        start = end;
    }
    if out.is_empty() {
        return Err("no JSON document (empty file)".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_pretty_and_unterminated() {
        assert_eq!(
            documents(b"{\"a\":1}\n{\"b\":2}\n", 100, 10).unwrap(),
            ["{\"a\":1}", "{\"b\":2}"]
        );
        assert_eq!(
            documents(b"{\"a\":1}\n{\"b\":2}", 100, 10).unwrap(),
            ["{\"a\":1}", "{\"b\":2}"]
        );
        assert_eq!(documents(b"{\n  \"a\": 1\n}\n", 100, 10).unwrap(), ["{\n  \"a\": 1\n}"]);
    }

    #[test]
    fn rejects_empty_garbage_and_excess() {
        assert!(documents(b"", 100, 10).is_err());
        assert!(documents(b"  \n", 100, 10).is_err());
        assert!(documents(b"{\"a\":1}\n{", 100, 10).is_err());
        assert!(documents(b"{} {} {}", 100, 2).is_err());
        assert!(documents(b"{}", 1, 2).is_err());
        assert!(documents(b"\xff", 100, 2).is_err());
        let deep = "[".repeat(100_000);
        assert!(documents(deep.as_bytes(), 1 << 20, 2).is_err());
    }
}
