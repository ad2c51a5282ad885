//! Fuzzes the cpio reader and writer with `secretvm_pack::cpio::check_roundtrip`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    secretvm_pack::cpio::check_roundtrip(data);
});
