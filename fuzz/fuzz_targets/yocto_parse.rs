//! Fuzzes the Yocto crate's parsers (config, lock, bitbake's output, gpg's listings, SPDX
//! SBOMs) and what consumes them with `secretvm_yocto::check_parse`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    secretvm_yocto::check_parse(data);
});
