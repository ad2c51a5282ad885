//! Entry points for the cargo-fuzz targets in `fuzz/`: each runs a parser and everything that
//! consumes its output on arbitrary bytes. Errors are fine; panics, overflows and unbounded
//! work are the bugs.

use crate::ovmf::Ovmf;
use crate::pe::{
    SetupPatch, authenticode_sha384, authenticode_sha384_with_head, qemu_patch_setup_header,
    qemu_patched_head,
};
use crate::sha384;
use crate::snp::{self, KernelHashes, SnpParams, Vcpu};
use crate::tdx::{self, AcpiDigests, MrtdOrder, Rtmr0Layout};

/// Parses `data` as OVMF and computes everything that reads the metadata.
pub fn check_ovmf(data: &[u8]) {
    let Ok(ovmf) = Ovmf::parse(data) else { return };
    let _ = ovmf.info();
    let params = SnpParams { vcpus: 2, vcpu: Vcpu::Type("EPYC-v4".into()), guest_features: 1 };
    let hashes = KernelHashes::new(b"kernel", None, Some("console=ttyS0"));
    let _ = snp::launch_digest(&ovmf, Some(sha384(b"seed")), &params, Some(&hashes));
    let _ = snp::launch_digest(&ovmf, Some(sha384(b"seed")), &params, None);
    let _ = tdx::mrtd(&ovmf, MrtdOrder::SinglePass);
    let _ = tdx::mrtd(&ovmf, MrtdOrder::TwoPass);
    let d = sha384(b"acpi");
    let acpi = AcpiDigests { loader: d, rsdp: d, tables: d };
    for memory in [0, 1 << 20, 2 << 30, 8 << 30] {
        let _ = tdx::rtmr0_events(&ovmf, Rtmr0Layout::Pre202505, memory, &acpi);
    }
}

/// Hashes `data` as a PE/COFF image, plain and with QEMU's setup-header patch; hashing the
/// patched head over the unchanged image must agree with hashing a patched copy.
pub fn check_pe(data: &[u8]) {
    let _ = authenticode_sha384(data);
    for (memory_bytes, initrd_len) in
        [(2 << 30, Some(221)), (8 << 30, None), (1 << 20, Some(1 << 40))]
    {
        let patch =
            SetupPatch { memory_bytes, initrd_len, append: "vga=0x317", acpi_data_size: 0x28000 };
        if let Ok(patched) = qemu_patch_setup_header(data, &patch) {
            let head = qemu_patched_head(data, &patch).expect("the copy was patched");
            assert_eq!(
                format!("{:?}", authenticode_sha384_with_head(data, &head)),
                format!("{:?}", authenticode_sha384(&patched)),
                "hashing over a replaced head differs from hashing a patched copy"
            );
        }
    }
}

/// Hashes `data[2..]` with every SHA-384 block function this CPU runs, fed in pieces whose
/// sizes come from `data[0..2]`; each must equal the `sha2` crate's SHA-384 of the whole.
pub fn check_sha384(data: &[u8]) {
    use sha2::Digest as _;
    let (piece, message) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])) + 1, rest),
        _ => (1, data),
    };
    let expected: [u8; 48] = sha2::Sha384::digest(message).into();
    for backend in crate::hasher::Backend::available() {
        let mut h = crate::hasher::Sha384::with_backend(backend);
        for chunk in message.chunks(piece) {
            h.update(chunk);
        }
        assert_eq!(h.finalize(), expected, "{backend:?}, pieces of {piece}");
    }
    assert_eq!(crate::hasher::Sha384::digest(message), expected, "one-shot");
}
