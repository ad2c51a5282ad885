//! Fuzzes the provenance bundle, trusted-root and statement parsers with
//! `secretvm_provenance::check_parse`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    secretvm_provenance::check_parse(data);
});
