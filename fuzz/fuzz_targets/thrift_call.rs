//! libFuzzer entry point of the `thrift_call` target (defined in `fuzz/src/lib.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| duet_fuzz::thrift_call(data));
