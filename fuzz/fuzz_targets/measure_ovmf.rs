//! Fuzzes the OVMF metadata parser and everything that consumes it with
//! `secretvm_measure::fuzz::check_ovmf`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    secretvm_measure::fuzz::check_ovmf(data);
});
