//! The user-space half of `pin-os-image`, on a regular file: one read of the image gives its
//! SHA-256 and its dm-verity tree, with the program's own tree code and buffer, but nothing is
//! mapped, so it runs where there is no device-mapper. `cargo xtask bench pin` times it against
//! `veritysetup format` and `sha256sum` on the same image and requires the same root digest and
//! the same SHA-256. The recipe builds only the program; this example never reaches an image.
//!
//! ```text
//! verity_tree <IMAGE> <FS_BLOCK> <SALT: hex>
//! ```
//!
//! Prints one line: `<image sha256> <root digest> <data block size> <hash tree bytes>`.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::process::ExitCode;

// The program's module, compiled once more here; the example uses only part of it.
#[allow(dead_code)]
#[path = "../src/verity.rs"]
mod verity;

fn main() -> ExitCode {
    match run(&std::env::args().skip(1).collect::<Vec<_>>()) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("verity_tree: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<String, String> {
    let [image, fs_block, salt] = args else {
        return Err("usage: verity_tree <IMAGE> <FS_BLOCK> <SALT: hex>".into());
    };
    let fs_block: u64 =
        fs_block.parse().map_err(|_| format!("FS_BLOCK {fs_block:?} is not a number"))?;
    let salt = parse_hex(salt).ok_or_else(|| format!("SALT {salt:?} is not hex digits"))?;
    let mut file = File::open(image).map_err(|e| format!("cannot open {image}: {e}"))?;
    let size = file.seek(SeekFrom::End(0)).map_err(|e| format!("{image}: no size: {e}"))?;
    file.rewind().map_err(|e| format!("{image}: cannot seek: {e}"))?;
    let block = verity::data_block_for(size, fs_block)
        .filter(|_| size > 0)
        .ok_or_else(|| format!("{image}: no data block size fits {size} bytes"))?;
    let tree = verity::build(&mut file, size, block, &salt).map_err(|e| format!("{image}: {e}"))?;
    Ok(format!(
        "{} {} {} {}",
        hex(&tree.image_sha256),
        hex(&tree.root),
        tree.data_block,
        tree.hash_device.len()
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}
