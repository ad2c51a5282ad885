//! Fuzzes the ISO writer with `secretvm_pack::iso::check_iso`: arbitrary cpio archives in,
//! structurally valid images out.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    secretvm_pack::iso::check_iso(data);
});
