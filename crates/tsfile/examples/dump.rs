//! Prints what the reader sees in a TsFile: one line per chunk, with its first points (a debugging
//! aid: `cargo run -p duet-tsfile --example dump -- FILE`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: dump FILE");
        return ExitCode::FAILURE;
    };
    let run = || -> Result<(), duet_tsfile::TsFileError> {
        let mut reader = duet_tsfile::TsFileReader::open(&path)?;
        eprintln!("{:?}", reader.metadata());
        for chunk in reader.chunks() {
            let chunk = chunk?;
            let first: Vec<_> = chunk.points().take(4).collect();
            eprintln!(
                "@{} {} {} {} {} {} aligned={} rows={} non-null={} first={:?}",
                chunk.offset,
                chunk.device,
                chunk.measurement,
                chunk.data_type,
                chunk.encoding,
                chunk.compression,
                chunk.aligned,
                chunk.times.len(),
                chunk.values.non_null_count(),
                first
            );
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
