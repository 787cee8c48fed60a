//! libFuzzer entry point of the `tsfile` target: the TsFile v4 reader and the mods parser
//! (crates/tsfile) on arbitrary bytes. Its stable counterpart is crates/tsfile/tests/hostile.rs;
//! seed the corpus with crates/tsfile/tests/fixtures/*.tsfile.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let options = duet_tsfile::ReadOptions {
        max_page_points: 1 << 16,
        ..Default::default()
    };
    if let Ok(mut reader) =
        duet_tsfile::TsFileReader::with_options(duet_tsfile::InMemory(data), options)
    {
        for chunk in reader.chunks().flatten() {
            let _ = chunk.points().count();
        }
    }
    let _ = duet_tsfile::parse_mods(data);
});
