//! libFuzzer entry point of the `tablet` target (defined in `fuzz/src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| duet_fuzz::tablet(data));
