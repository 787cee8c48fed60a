//! libFuzzer entry point of the `pipe_body` target (defined in `fuzz/src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| duet_fuzz::pipe_body(data));
