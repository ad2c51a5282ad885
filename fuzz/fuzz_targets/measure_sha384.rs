//! Fuzzes the SHA-384 block functions against the `sha2` crate with
//! `secretvm_measure::fuzz::check_sha384`: arbitrary messages fed in arbitrary piece sizes.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    secretvm_measure::fuzz::check_sha384(data);
});
