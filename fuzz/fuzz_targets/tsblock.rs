//! libFuzzer entry point of the `tsblock` target (defined in `fuzz/src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| duet_fuzz::tsblock(data));
