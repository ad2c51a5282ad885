//! Fuzzes the PE/COFF Authenticode hash and QEMU's setup-header patch with
//! `secretvm_measure::fuzz::check_pe`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    secretvm_measure::fuzz::check_pe(data);
});
