//! The three kernel interfaces the pin needs that std does not wrap: a sealed memfd for the hash
//! tree, a read-only loop device over it, and a device-mapper table. This is the only module
//! with `unsafe` code: the foreign calls themselves. Every structure handed to the kernel is
//! built byte by byte at offsets the tests check against the kernel's UAPI headers
//! (`linux/dm-ioctl.h`, `linux/loop.h`), so no Rust struct layout is trusted.
#![allow(unsafe_code)]

use std::ffi::{CString, c_char, c_int, c_uint, c_ulong};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;

unsafe extern "C" {
    fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    fn memfd_create(name: *const c_char, flags: c_uint) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
}

/// `_IOWR(type, nr, size)` of the kernel's `asm-generic/ioctl.h`.
const fn iowr(kind: u32, nr: u32, size: usize) -> c_ulong {
    ((3 << 30) | ((size as u32) << 16) | (kind << 8) | nr) as c_ulong
}

/// `sizeof(struct dm_ioctl)`, and the offsets of the fields we set or read.
pub(crate) const DM_IOCTL_SIZE: usize = 312;
pub(crate) const DM_DATA_SIZE: usize = 12;
pub(crate) const DM_DATA_START: usize = 16;
pub(crate) const DM_TARGET_COUNT: usize = 20;
pub(crate) const DM_FLAGS: usize = 28;
pub(crate) const DM_DEV: usize = 40;
pub(crate) const DM_NAME: usize = 48;
/// `DM_NAME_LEN`, the name field's size with its terminating NUL.
pub(crate) const DM_NAME_LEN: usize = 128;
/// `sizeof(struct dm_target_spec)`, and its fields' offsets.
pub(crate) const DM_SPEC_SIZE: usize = 40;
pub(crate) const DM_SPEC_LENGTH: usize = 8;
pub(crate) const DM_SPEC_NEXT: usize = 20;
pub(crate) const DM_SPEC_TYPE: usize = 24;
/// The interface version we speak: 4.0.0 (the kernel takes any request of major 4 whose minor
/// is no newer than its own).
pub(crate) const DM_VERSION: [u32; 3] = [4, 0, 0];
pub(crate) const DM_READONLY_FLAG: u32 = 1;
pub(crate) const DM_DEV_CREATE: c_ulong = iowr(0xfd, 3, DM_IOCTL_SIZE);
pub(crate) const DM_DEV_REMOVE: c_ulong = iowr(0xfd, 4, DM_IOCTL_SIZE);
/// Without `DM_SUSPEND_FLAG` this resumes: the loaded table goes live.
pub(crate) const DM_DEV_SUSPEND: c_ulong = iowr(0xfd, 6, DM_IOCTL_SIZE);
pub(crate) const DM_TABLE_LOAD: c_ulong = iowr(0xfd, 9, DM_IOCTL_SIZE);

/// `sizeof(struct loop_config)` and the offset of its `info.lo_flags`.
pub(crate) const LOOP_CONFIG_SIZE: usize = 304;
pub(crate) const LOOP_CONFIG_FLAGS: usize = 60;
pub(crate) const LOOP_CONFIGURE: c_ulong = 0x4C0A;
pub(crate) const LOOP_CTL_GET_FREE: c_ulong = 0x4C82;
pub(crate) const LO_FLAGS_READ_ONLY: u32 = 1;
pub(crate) const LO_FLAGS_AUTOCLEAR: u32 = 4;

pub(crate) const MFD_CLOEXEC: c_uint = 1;
pub(crate) const MFD_ALLOW_SEALING: c_uint = 2;
pub(crate) const F_ADD_SEALS: c_int = 1033;
pub(crate) const F_SEAL_SEAL: c_int = 1;
pub(crate) const F_SEAL_SHRINK: c_int = 2;
pub(crate) const F_SEAL_GROW: c_int = 4;
pub(crate) const F_SEAL_WRITE: c_int = 8;

/// What failed, for the message: the operation and the error.
fn failed(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn check(result: c_int, what: impl FnOnce() -> String) -> io::Result<c_int> {
    if result < 0 { Err(failed(what())(io::Error::last_os_error())) } else { Ok(result) }
}

/// An anonymous in-memory file holding `contents`, sealed: nothing, not even the guest's root,
/// can change, grow or shrink it afterwards.
pub fn sealed_memfd(name: &str, contents: &[u8]) -> io::Result<File> {
    let c_name = CString::new(name).map_err(|_| io::Error::other("a memfd name has a NUL"))?;
    // SAFETY: c_name is a NUL-terminated string that outlives the call.
    let fd = unsafe { memfd_create(c_name.as_ptr(), MFD_CLOEXEC | MFD_ALLOW_SEALING) };
    let fd = check(fd, || format!("memfd_create({name})"))?;
    // SAFETY: fd was just returned by memfd_create and nothing else owns it.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(contents)
        .map_err(failed(format!("writing {} bytes to memfd {name}", contents.len())))?;
    let seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS takes one int argument; the fd is open.
    let result = unsafe { fcntl(file.as_raw_fd(), F_ADD_SEALS, seals) };
    check(result, || format!("sealing memfd {name}"))?;
    Ok(file)
}

/// The `struct loop_config` that attaches the file `fd` read-only, detached when its last user
/// closes it.
pub(crate) fn loop_config(fd: c_int) -> [u8; LOOP_CONFIG_SIZE] {
    let mut config = [0u8; LOOP_CONFIG_SIZE];
    config[..4].copy_from_slice(&(fd as u32).to_ne_bytes());
    let flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
    config[LOOP_CONFIG_FLAGS..LOOP_CONFIG_FLAGS + 4].copy_from_slice(&flags.to_ne_bytes());
    config
}

/// Attaches `backing` to a free loop device, read-only, and returns the open device (it stays
/// attached while this or another user, such as a device-mapper table, holds it), its path and
/// its device number.
pub fn attach_loop(backing: &File) -> io::Result<(File, PathBuf, (u32, u32))> {
    let control =
        File::open("/dev/loop-control").map_err(failed("opening /dev/loop-control".into()))?;
    // A device another process takes between the two calls is busy: ask again, a few times.
    for _ in 0..8 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument.
        let n = unsafe { ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        let n = check(n, || "LOOP_CTL_GET_FREE on /dev/loop-control".into())?;
        let path = PathBuf::from(format!("/dev/loop{n}"));
        let device = File::open(&path).map_err(failed(format!("opening {}", path.display())))?;
        let config = loop_config(backing.as_raw_fd());
        // SAFETY: config is a struct loop_config of the kernel's size, live for the call.
        let result = unsafe { ioctl(device.as_raw_fd(), LOOP_CONFIGURE, config.as_ptr()) };
        if result < 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(16) {
                continue; // EBUSY
            }
            return Err(failed(format!("LOOP_CONFIGURE on {}", path.display()))(error));
        }
        let number = device_number(&device, &path)?;
        return Ok((device, path, number));
    }
    Err(io::Error::other("every free loop device was taken before it could be configured"))
}

/// The (major, minor) of the block device `file` at `path`.
pub fn device_number(file: &File, path: &std::path::Path) -> io::Result<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().map_err(failed(format!("stat {}", path.display())))?;
    if !meta.file_type().is_block_device() {
        return Err(io::Error::other(format!("{} is not a block device", path.display())));
    }
    Ok(split_dev_t(meta.rdev()))
}

/// glibc's `major()` and `minor()` of a `dev_t`.
pub(crate) fn split_dev_t(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// The kernel's `new_decode_dev` of the device number device-mapper reports.
pub(crate) fn split_kernel_dev(dev: u64) -> (u32, u32) {
    (((dev & 0xfff00) >> 8) as u32, ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32)
}

/// A `struct dm_ioctl` for device `name` with `flags`, followed by `payload` (at
/// `data_start`), as one buffer of `data_size` bytes.
pub(crate) fn dm_request(name: &str, flags: u32, targets: u32, payload: &[u8]) -> Vec<u8> {
    let mut request = vec![0u8; DM_IOCTL_SIZE + payload.len()];
    for (i, part) in DM_VERSION.iter().enumerate() {
        request[4 * i..4 * i + 4].copy_from_slice(&part.to_ne_bytes());
    }
    let size = request.len() as u32;
    request[DM_DATA_SIZE..DM_DATA_SIZE + 4].copy_from_slice(&size.to_ne_bytes());
    request[DM_DATA_START..DM_DATA_START + 4]
        .copy_from_slice(&(DM_IOCTL_SIZE as u32).to_ne_bytes());
    request[DM_TARGET_COUNT..DM_TARGET_COUNT + 4].copy_from_slice(&targets.to_ne_bytes());
    request[DM_FLAGS..DM_FLAGS + 4].copy_from_slice(&flags.to_ne_bytes());
    request[DM_NAME..DM_NAME + name.len()].copy_from_slice(name.as_bytes());
    request[DM_IOCTL_SIZE..].copy_from_slice(payload);
    request
}

/// One `struct dm_target_spec` covering `sectors` from sector 0 with `target` and its
/// `params`, NUL-terminated and padded to 8 bytes (`next` points past them).
pub(crate) fn dm_target(sectors: u64, target: &str, params: &str) -> Vec<u8> {
    let len = (DM_SPEC_SIZE + params.len() + 1).next_multiple_of(8);
    let mut spec = vec![0u8; len];
    spec[DM_SPEC_LENGTH..DM_SPEC_LENGTH + 8].copy_from_slice(&sectors.to_ne_bytes());
    spec[DM_SPEC_NEXT..DM_SPEC_NEXT + 4].copy_from_slice(&(len as u32).to_ne_bytes());
    spec[DM_SPEC_TYPE..DM_SPEC_TYPE + target.len()].copy_from_slice(target.as_bytes());
    spec[DM_SPEC_SIZE..DM_SPEC_SIZE + params.len()].copy_from_slice(params.as_bytes());
    spec
}

fn dm_call(control: &File, request: c_ulong, buffer: &mut [u8], what: &str) -> io::Result<()> {
    // SAFETY: buffer holds a struct dm_ioctl whose data_size is the buffer's length, so the
    // kernel reads and writes inside it; it lives for the call.
    let result = unsafe { ioctl(control.as_raw_fd(), request, buffer.as_mut_ptr()) };
    check(result, || format!("{what} (device-mapper ioctl on /dev/mapper/control)")).map(|_| ())
}

/// Creates the device-mapper device `name` with one read-only `target` over `sectors` and makes
/// it live. Returns its (major, minor). Nothing is left behind if a step fails.
pub fn dm_create(name: &str, sectors: u64, target: &str, params: &str) -> io::Result<(u32, u32)> {
    if name.is_empty() || name.len() >= DM_NAME_LEN || name.contains('/') {
        return Err(io::Error::other(format!(
            "{name:?} is not a device-mapper name (1 to {} bytes, no '/')",
            DM_NAME_LEN - 1
        )));
    }
    let control =
        OpenOptions::new().read(true).write(true).open("/dev/mapper/control").map_err(failed(
            "opening /dev/mapper/control (is CONFIG_BLK_DEV_DM built in?)".into(),
        ))?;
    let mut create = dm_request(name, 0, 0, &[]);
    dm_call(&control, DM_DEV_CREATE, &mut create, &format!("creating {name}"))?;
    let dev = u64::from_ne_bytes(create[DM_DEV..DM_DEV + 8].try_into().expect("8 bytes"));
    let live = (|| {
        let mut load = dm_request(name, DM_READONLY_FLAG, 1, &dm_target(sectors, target, params));
        dm_call(
            &control,
            DM_TABLE_LOAD,
            &mut load,
            &format!("loading the {target} table of {name}"),
        )?;
        let mut resume = dm_request(name, 0, 0, &[]);
        dm_call(&control, DM_DEV_SUSPEND, &mut resume, &format!("resuming {name}"))
    })();
    if let Err(error) = live {
        let mut remove = dm_request(name, 0, 0, &[]);
        // The device is useless either way; the first error is the one to report.
        let _ = dm_call(&control, DM_DEV_REMOVE, &mut remove, "removing");
        return Err(error);
    }
    Ok(split_kernel_dev(dev))
}
