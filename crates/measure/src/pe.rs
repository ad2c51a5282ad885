//! The kernel image as OVMF measures it into RTMR1: QEMU's setup-header patch and the PE/COFF
//! Authenticode SHA-384.
//!
//! Specifications: the Linux x86 boot protocol (`Documentation/arch/x86/boot.rst`, setup header
//! fields at 0x1f1..), QEMU `hw/i386/x86.c` `x86_load_linux` (which fields QEMU writes), and the
//! Microsoft PE/COFF specification, "Calculating the PE Image Hash" (Authenticode).

use crate::hasher::Sha384;

use crate::bytes::{add, slice, u16_at, u32_at};
use crate::digest::Sha384Digest;
use crate::{Error, Result};

/// The boot protocol version field.
const HDR_VERSION: u64 = 0x206;
/// `loadflags`; bit 0 LOADED_HIGH, bit 7 CAN_USE_HEAP.
const HDR_LOADFLAGS: u64 = 0x211;
/// `xloadflags`; bit 1 XLF_CAN_BE_LOADED_ABOVE_4G.
const HDR_XLOADFLAGS: u64 = 0x236;
/// QEMU's `acpi_data_size` default for q35 and TDX (`hw/i386/pc.c`).
pub const DEFAULT_ACPI_DATA_SIZE: u32 = 0x28000;

/// How QEMU lays out guest memory for the direct-boot kernel, which decides the patched
/// setup header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupPatch<'a> {
    /// Guest RAM in bytes (`-m`).
    pub memory_bytes: u64,
    /// The size of the initrd, if one is passed.
    pub initrd_len: Option<u64>,
    /// The `-append` string (QEMU parses `vga=` from it).
    pub append: &'a str,
    /// Bytes reserved for ACPI below 4 GiB (QEMU `acpi_data_size`).
    pub acpi_data_size: u32,
}

/// The kernel with the setup header fields QEMU 10.1 and older write before serving it over
/// fw_cfg: `type_of_loader`, `CAN_USE_HEAP`, `heap_end_ptr`, `cmd_line_ptr`, the ramdisk
/// address and size, and `vid_mode` when the cmdline has `vga=`.
///
/// Only "high and recent" kernels (boot protocol 2.02 or later with LOADED_HIGH) are
/// modelled; others return an error.
pub fn qemu_patch_setup_header(kernel: &[u8], p: &SetupPatch<'_>) -> Result<Vec<u8>> {
    let mut k = qemu_patched_head(kernel, p)?;
    k.extend_from_slice(&kernel[k.len()..]);
    Ok(k)
}

/// The number of leading kernel bytes QEMU's setup-header patch can change (it writes nothing
/// at or after `xloadflags`).
pub const PATCHED_HEAD_LEN: usize = HDR_XLOADFLAGS as usize;

/// The first [`PATCHED_HEAD_LEN`] bytes of the kernel as [`qemu_patch_setup_header`] patches
/// them; the rest of the kernel is served unchanged, so callers need not copy it (see
/// [`authenticode_sha384_with_head`]).
pub fn qemu_patched_head(kernel: &[u8], p: &SetupPatch<'_>) -> Result<Vec<u8>> {
    let protocol = u16_at(kernel, HDR_VERSION, "setup header version")?;
    let loadflags = slice(kernel, HDR_LOADFLAGS, 1, "setup header loadflags")?[0];
    if protocol < 0x202 || loadflags & 1 == 0 {
        return Err(Error::BadField {
            what: "setup header version",
            offset: HDR_VERSION,
            expected: "a bzImage with boot protocol 2.02 or later loaded high (older layouts are not modelled)",
            actual: u64::from(protocol),
        });
    }
    // The xloadflags read checks that the kernel holds the whole head; the fields written
    // below all end before it.
    let xloadflags = u16_at(kernel, HDR_XLOADFLAGS, "setup header xloadflags")?;
    let mut k = kernel[..PATCHED_HEAD_LEN].to_vec();
    let (real_addr, cmdline_addr) = (0x10000u32, 0x20000u32);
    k[0x210] = 0xb0; // type_of_loader: QEMU
    k[0x211] |= 0x80; // CAN_USE_HEAP
    k[0x224..0x226].copy_from_slice(&((cmdline_addr - real_addr - 0x200) as u16).to_le_bytes());
    k[0x228..0x22c].copy_from_slice(&cmdline_addr.to_le_bytes());
    if let Some(at) = p.append.find("vga=") {
        let mode = vga_mode(&p.append[at + 4..]);
        k[0x1fa..0x1fc].copy_from_slice(&mode.to_le_bytes());
    }
    if let Some(initrd_len) = p.initrd_len {
        let mut initrd_max = if protocol >= 0x20c && xloadflags & 0x2 != 0 {
            u32::MAX
        } else if protocol >= 0x203 {
            u32_at(kernel, 0x22c, "setup header initrd_addr_max")?
        } else {
            0x37ff_ffff
        };
        let lowmem = if p.memory_bytes >= 0xb000_0000 { 0x8000_0000 } else { 0xb000_0000 };
        let below_4g = p.memory_bytes.min(lowmem);
        let limit =
            below_4g.checked_sub(u64::from(p.acpi_data_size)).ok_or(Error::BadParameter {
                field: "memory_bytes",
                expected: "more than acpi_data_size",
                actual: p.memory_bytes.to_string(),
            })?;
        if u64::from(initrd_max) >= limit {
            // limit < 0xb0000000, so this fits in u32.
            initrd_max = (limit - 1) as u32;
        }
        let size = u32::try_from(initrd_len).ok().filter(|&s| s < initrd_max).ok_or(
            Error::BadParameter {
                field: "initrd",
                expected: "smaller than the highest initrd address QEMU allows",
                actual: initrd_len.to_string(),
            },
        )?;
        let addr = (initrd_max - size) & !4095;
        k[0x218..0x21c].copy_from_slice(&addr.to_le_bytes());
        k[0x21c..0x220].copy_from_slice(&size.to_le_bytes());
    }
    Ok(k)
}

/// `vga=normal|ext|ask|<number>` as QEMU reads it (`strtol(.., 0)` for numbers).
fn vga_mode(s: &str) -> u16 {
    if s.starts_with("normal") {
        0xffff
    } else if s.starts_with("ext") {
        0xfffe
    } else if s.starts_with("ask") {
        0xfffd
    } else {
        let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
            (h, 16)
        } else if s.starts_with('0') {
            (s, 8)
        } else {
            (s, 10)
        };
        let end = digits.find(|c: char| !c.is_digit(radix)).unwrap_or(digits.len());
        i64::from_str_radix(&digits[..end], radix).unwrap_or(0) as u16
    }
}

/// The Authenticode SHA-384 of a PE/COFF image: the headers without the checksum and the
/// certificate-table directory entry, the sections' raw data in file order, then any trailing
/// bytes except the certificate table.
pub fn authenticode_sha384(image: &[u8]) -> Result<Sha384Digest> {
    authenticode(View { head: &[], full: image })
}

/// [`authenticode_sha384`] of `image` with its first `head.len()` bytes replaced by `head`
/// (e.g. [`qemu_patched_head`]), without copying the image.
pub fn authenticode_sha384_with_head(image: &[u8], head: &[u8]) -> Result<Sha384Digest> {
    if head.len() > image.len() {
        return Err(Error::Truncated {
            what: "image under the replaced head",
            offset: 0,
            needed: head.len() as u64,
            len: image.len() as u64,
        });
    }
    authenticode(View { head, full: image })
}

/// An image whose first `head.len()` bytes are `head` and whose other bytes are `full`'s.
#[derive(Clone, Copy)]
struct View<'a> {
    head: &'a [u8],
    full: &'a [u8],
}

impl View<'_> {
    /// Checks that `len` bytes at `offset` exist, then feeds them to `h`.
    fn hash(&self, h: &mut Sha384, offset: u64, len: u64, what: &'static str) -> Result<()> {
        let whole = slice(self.full, offset, len, what)?;
        // In bounds of `full`, so these fit in usize.
        let start = offset as usize;
        let split = self.head.len().clamp(start, start + whole.len());
        h.update(self.head.get(start..split).unwrap_or_default());
        h.update(&whole[split - start..]);
        Ok(())
    }

    fn u16_at(&self, offset: u64, what: &'static str) -> Result<u16> {
        self.array(offset, what).map(u16::from_le_bytes)
    }

    fn u32_at(&self, offset: u64, what: &'static str) -> Result<u32> {
        self.array(offset, what).map(u32::from_le_bytes)
    }

    fn array<const N: usize>(&self, offset: u64, what: &'static str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(slice(self.full, offset, N as u64, what)?);
        for (i, byte) in out.iter_mut().enumerate() {
            if let Some(&patched) = self.head.get(offset as usize + i) {
                *byte = patched;
            }
        }
        Ok(out)
    }
}

fn authenticode(image: View<'_>) -> Result<Sha384Digest> {
    let len = image.full.len() as u64;
    let pe = u64::from(image.u32_at(0x3c, "DOS header e_lfanew")?);
    let sig = image.u32_at(pe, "PE signature")?;
    if sig != 0x0000_4550 {
        return Err(Error::BadMagic {
            what: "PE signature",
            offset: pe,
            expected: "PE\\0\\0".into(),
            actual: format!("{sig:#010x}"),
        });
    }
    let coff = add(pe, 4, "COFF header offset")?;
    let sections = u64::from(image.u16_at(coff + 2, "COFF NumberOfSections")?);
    let opt_size = u64::from(image.u16_at(coff + 16, "COFF SizeOfOptionalHeader")?);
    let opt = coff + 20;
    let magic = image.u16_at(opt, "optional header Magic")?;
    let (dirs_count_at, dirs_at) = match magic {
        0x10b => (opt + 92, opt + 96),
        0x20b => (opt + 108, opt + 112),
        other => {
            return Err(Error::BadField {
                what: "optional header Magic",
                offset: opt,
                expected: "0x10b (PE32) or 0x20b (PE32+)",
                actual: u64::from(other),
            });
        }
    };
    let checksum = opt + 64;
    let headers_size = u64::from(image.u32_at(opt + 60, "optional header SizeOfHeaders")?);
    let dirs = image.u32_at(dirs_count_at, "optional header NumberOfRvaAndSizes")?;
    let mut h = Sha384::new();
    image.hash(&mut h, 0, checksum, "PE headers before CheckSum")?;
    let mut cert_size = 0u64;
    if dirs > 4 {
        let cert_dir = dirs_at + 4 * 8;
        let cert_addr = image.u32_at(cert_dir, "certificate table VirtualAddress")?;
        cert_size = u64::from(image.u32_at(cert_dir + 4, "certificate table Size")?);
        if cert_addr == 0 {
            cert_size = 0;
        }
        image.hash(
            &mut h,
            checksum + 4,
            cert_dir - (checksum + 4),
            "PE headers before the certificate table entry",
        )?;
        let rest = headers_size.checked_sub(cert_dir + 8).ok_or(Error::BadField {
            what: "optional header SizeOfHeaders",
            offset: opt + 60,
            expected: "past the data directories",
            actual: headers_size,
        })?;
        image.hash(&mut h, cert_dir + 8, rest, "PE headers after the certificate table entry")?;
    } else {
        let rest = headers_size.checked_sub(checksum + 4).ok_or(Error::BadField {
            what: "optional header SizeOfHeaders",
            offset: opt + 60,
            expected: "past the CheckSum field",
            actual: headers_size,
        })?;
        image.hash(&mut h, checksum + 4, rest, "PE headers after CheckSum")?;
    }
    let table = add(opt, opt_size, "section table offset")?;
    // At most 65535 entries of 40 bytes, all inside the image: checked before allocating.
    slice(image.full, table, sections * 40, "PE section table")?;
    let mut raw = Vec::new();
    for i in 0..sections {
        let at = table + i * 40;
        let size = u64::from(image.u32_at(at + 16, "section SizeOfRawData")?);
        let ptr = u64::from(image.u32_at(at + 20, "section PointerToRawData")?);
        if size > 0 {
            raw.push((ptr, size));
        }
    }
    raw.sort_unstable();
    let mut hashed = headers_size;
    for (ptr, size) in raw {
        image.hash(&mut h, ptr, size, "section raw data")?;
        hashed = add(hashed, size, "bytes hashed")?;
    }
    if len > hashed {
        let extra = (len - hashed).checked_sub(cert_size).ok_or(Error::BadField {
            what: "certificate table Size",
            offset: dirs_at + 36,
            expected: "at most the bytes after the last section",
            actual: cert_size,
        })?;
        image.hash(&mut h, hashed, extra, "trailing data")?;
    }
    Ok(Sha384Digest(h.finalize()))
}
