//! The file edge of the ISO writer and of the GCP disk tarball: open the input, lay out, and
//! write the artifact atomically.
//!
//! The ISO is made in two passes over the same open cpio file: [`secretvm_pack::iso::plan`]
//! walks the headers through a small buffered reader that seeks over file data, then [`secretvm_pack::iso::write`] seeks to
//! each file's data and copies it with `std::io::copy`, which uses `copy_file_range` between
//! files on Linux.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use secretvm_pack::cpio;
use secretvm_pack::iso;
use sha2::{Digest, Sha256};

use crate::hashed::{HashingWriter, Written};
use crate::{Error, Result, io_error, open_file, write_atomically};

/// The read buffer of the planning pass over the cpio headers.
const PLAN_BUFFER_LEN: usize = 4 * 1024;

/// What [`write_iso`] made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsoSummary {
    /// The number of entries, the root included.
    pub entries: usize,
    /// The image size in bytes.
    pub image_len: u64,
    /// The bytes of file data copied from the cpio.
    pub data_len: u64,
}

/// Makes the ISO image of the newc cpio archive at `cpio_path` and writes it atomically to `out`.
///
/// `progress` is called with the bytes written so far and the image size.
pub fn write_iso(
    cpio_path: &Path,
    options: &iso::Options,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<IsoSummary> {
    let (summary, ()) = iso_inner(cpio_path, options, out, |layout, source, sink| {
        let total = layout.image_len();
        let file: &File = sink.get_ref();
        let mut started = 0u64;
        iso::write_with_progress(layout, source, sink, &mut |done| {
            // Start the write-back of what is surely on the file (the buffers hold less than
            // 8 MiB), so the final fsync waits for less.
            let upto = done.saturating_sub(8 << 20);
            if upto >= started + (64 << 20) {
                let _ = rustix::fs::fadvise(
                    file,
                    started,
                    std::num::NonZeroU64::new(upto - started),
                    rustix::fs::Advice::DontNeed,
                );
                started = upto;
            }
            progress(done, total)
        })?;
        Ok(())
    })?;
    Ok(summary)
}

/// [`write_iso`], also returning the size and SHA-256 of the image, hashed as it is written.
pub fn write_iso_hashed(
    cpio_path: &Path,
    options: &iso::Options,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(IsoSummary, Written)> {
    iso_inner(cpio_path, options, out, |layout, source, sink| {
        let total = layout.image_len();
        let mut hashing = HashingWriter::new(sink);
        iso::write_with_progress(layout, source, &mut hashing, &mut |done| progress(done, total))?;
        Ok(hashing.finish())
    })
}

/// Plans the image of the cpio at `cpio_path`, then lets `fill` write it into the temporary file
/// of `out`, from an unbuffered view of the same open cpio.
fn iso_inner<T>(
    cpio_path: &Path,
    options: &iso::Options,
    out: &Path,
    fill: impl FnOnce(&iso::Layout, &mut &File, &mut BufWriter<&File>) -> iso::Result<T>,
) -> Result<(IsoSummary, T)> {
    let (_, file) = open_file(cpio_path).map_err(io_error("open", cpio_path))?;
    // Seekable: the planning pass skips file data by seeking, so it reads little more than the
    // headers; a small buffer keeps each refill after a skip cheap.
    let reader = cpio::Reader::new_seekable(BufReader::with_capacity(PLAN_BUFFER_LEN, &file))
        .map_err(io_error("seek in", cpio_path))?;
    let layout = iso::plan(reader, options)
        .map_err(|source| Error::Iso { path: cpio_path.to_path_buf(), source })?;
    let summary = IsoSummary {
        entries: layout.entry_count(),
        image_len: layout.image_len(),
        data_len: layout.data_len(),
    };
    let value = write_atomically(out, |sink| {
        // An unbuffered `&File`: `io::copy` then moves each file's data with `copy_file_range`
        // (measured faster here than a buffered reader on a 560 MB, 50k-entry cpio).
        let mut source = &file;
        fill(&layout, &mut source, sink)
            .map_err(|source| Error::Iso { path: cpio_path.to_path_buf(), source })
    })?;
    Ok((summary, value))
}

/// Writes the GCP import tarball of the raw disk at `disk`: a `tar.gz` holding `disk.raw`
/// (see [`secretvm_pack::gcp`], sparse by default) written atomically to `out`; returns the disk
/// size in bytes.
pub fn write_gcp_tar(
    disk: &Path,
    options: &secretvm_pack::gcp::Options,
    out: &Path,
) -> Result<u64> {
    let (len, file) = open_file(disk).map_err(io_error("open", disk))?;
    write_atomically(out, |sink| {
        secretvm_pack::gcp::write(len, &file, options, &mut *sink)
            .map(|_| len)
            .map_err(|source| Error::GcpTar { path: disk.to_path_buf(), source })
    })
}

/// What [`write_gcp_tar_hashed`] read and wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcpTarHashed {
    /// The SHA-256 of the disk, hashed as the tarball writer read it (no read of its own).
    pub disk_sha256: [u8; 32],
    /// The size and SHA-256 of the tarball, hashed as it was written.
    pub tarball: Written,
}

/// [`write_gcp_tar`], also returning the SHA-256 of the disk and the size and SHA-256 of the
/// tarball.
pub fn write_gcp_tar_hashed(
    disk: &Path,
    options: &secretvm_pack::gcp::Options,
    out: &Path,
) -> Result<GcpTarHashed> {
    let (len, file) = open_file(disk).map_err(io_error("open", disk))?;
    let mut disk_hasher = Sha256::new();
    let tarball = write_atomically(out, |sink| {
        let mut hashing = HashingWriter::new(&mut *sink);
        secretvm_pack::gcp::write_observed(len, &file, options, &mut hashing, &mut |bytes| {
            disk_hasher.update(bytes);
        })
        .map_err(|source| Error::GcpTar { path: disk.to_path_buf(), source })?;
        Ok(hashing.finish())
    })?;
    Ok(GcpTarHashed { disk_sha256: disk_hasher.finalize().into(), tarball })
}
