//! IoTDB's compressed pipe request lives in `duet_proto::pipe_compressed` (its bytes are the
//! protocol's); the sink's configuration (`config`) and the pipe task (`task`) name it through this
//! module, which only re-exports it.

pub use duet_proto::pipe_compressed::{
    compress, Compressor, MAX_COMPRESSION_STAGES, ZSTD_DEFAULT_LEVEL, ZSTD_MAX_LEVEL,
    ZSTD_MIN_LEVEL,
};
