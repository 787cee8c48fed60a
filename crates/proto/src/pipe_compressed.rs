//! IoTDB's compressed pipe request (type 300, pipe reference §6.6) with all five of its compressors,
//! both ways: the sink wraps a request in it (`compressor`, a comma list applied in order, and
//! `compressor.zstd.level`), the receiver unwraps it under a bound per stage. Its header and the
//! wrapped request are read with [`ByteReader`], as every other pipe body.
//!
//! The byte format of each compressor is what IoTDB's Java classes produce (apache/iotdb
//! `iotdb-core/node-commons/src/main/java/org/apache/iotdb/commons/pipe/sink/compressor/`
//! `Pipe{Snappy,GZIP,LZ4,ZSTD,LZMA2}Compressor.java` at 539c8dc8 / d89f82d2 / 3662b7f6 / 39d950d6,
//! delegating to apache/tsfile `java/tsfile/src/main/java/org/apache/tsfile/compress/ICompressor.java`
//! (65eef0b7) and `IUnCompressor.java` (61a53ba2)):
//!
//! | code | name | Java call | format |
//! |---|---|---|---|
//! | 0 | SNAPPY | `Snappy.compress` (snappy-java) | raw snappy block (varint length preamble) |
//! | 1 | GZIP | `java.util.zip.GZIPOutputStream` | gzip stream (RFC 1952: header, deflate, CRC-32, ISIZE); read by `GZIPInputStream`, which accepts concatenated members |
//! | 2 | LZ4 | lz4-java `LZ4Factory.fastCompressor().compress` | raw LZ4 block, no size prefix or frame; read by `safeDecompressor` into a buffer of the declared length |
//! | 3 | ZSTD | zstd-jni `Zstd.compress(data, level)` | one standard zstd frame (content size in its header); `Zstd.decompress(data, length)` |
//! | 4 | LZMA2 | xz-java `XZOutputStream(out, new LZMA2Options())` | `.xz` container (preset 6: LZMA2 with an 8 MiB dictionary, CRC64 check); `XZInputStream` |
//!
//! **Invariant:** a stage never yields more than the length its header declares (at most
//! [`MAX_DECOMPRESSED_BYTES`], IoTDB's anti-bomb limit): stream decoders are read into a buffer that
//! grows with their output up to that length and one byte beyond it must not exist; block decoders
//! write into a buffer of exactly that length after the block was shown able to expand that far. A declared length that differs from what the stage
//! really holds is an error, as is anything malformed; nothing here panics on input.

use std::io::Read;

use bytes::BufMut;

use crate::pipe_body::request_type;
use crate::reader::ByteReader;

/// IoTDB's `TRANSFER_COMPRESSED`: a wrapper around another request.
pub const TRANSFER_COMPRESSED: i16 = request_type::TRANSFER_COMPRESSED;

/// Largest decompressed size of one stage a receiver accepts (IoTDB's
/// `pipeReceiverReqDecompressedMaxLengthInBytes`, 1 GiB).
pub const MAX_DECOMPRESSED_BYTES: usize = 1 << 30;

/// The most compression stages one request may declare, and the longest `compressor` list a sink
/// accepts (IoTDB allows 127; every stage may inflate up to [`MAX_DECOMPRESSED_BYTES`], so Duet keeps
/// the chain short: applying one compressor twice gains nothing).
pub const MAX_COMPRESSION_STAGES: usize = 8;

/// zstd-jni's `Zstd.defaultCompressionLevel()`, IoTDB's default `compressor.zstd.level`.
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;
/// zstd-jni's `Zstd.minCompressionLevel()` (libzstd's `ZSTD_minCLevel`, -(1 << 17)).
pub const ZSTD_MIN_LEVEL: i32 = -131_072;
/// zstd-jni's `Zstd.maxCompressionLevel()`.
pub const ZSTD_MAX_LEVEL: i32 = 22;

/// No snappy block expands by more than this: its densest element is a 3-byte copy of 64 bytes.
const SNAPPY_MAX_EXPANSION: usize = 22;

/// No LZ4 block expands by more than this per input byte: a match's length grows by at most 255 per
/// extension byte, and a literal costs at least its own byte (lz4-java's `MAX_COMPRESS_RATIO` too).
const LZ4_MAX_EXPANSION: usize = 255;

/// Memory the xz decoder may use, above all for the dictionary its header asks for: enough for
/// preset 9 (a 64 MiB dictionary; IoTDB's sender uses preset 6, 8 MiB), refused beyond, so a header
/// declaring a 4 GiB dictionary cannot make the receiver allocate it.
const XZ_DECODER_MEMORY_LIMIT: u64 = 96 << 20;

/// The preset IoTDB's `new LZMA2Options()` means (xz-java's `PRESET_DEFAULT`).
const XZ_PRESET: u32 = 6;

/// Why a compressed request could not be made or unwrapped.
#[derive(Debug, thiserror::Error)]
pub enum CompressError {
    #[error("empty compressed request")]
    Empty,
    #[error("{0} compression stages; at most {MAX_COMPRESSION_STAGES} are accepted")]
    TooManyStages(usize),
    #[error("truncated compressor list")]
    TruncatedHeader,
    #[error("Decompressed length should be between 0 and {MAX_DECOMPRESSED_BYTES}, but got {0}.")]
    DeclaredLength(i64),
    #[error(
        "compressor type {0} is unknown (IoTDB's are 0 snappy, 1 gzip, 2 lz4, 3 zstd, 4 lzma2)"
    )]
    UnknownCompressor(u8),
    #[error(
        "{compressor} stage of {compressed} bytes cannot expand to the {declared} it declares"
    )]
    CannotExpand {
        compressor: &'static str,
        compressed: usize,
        declared: usize,
    },
    #[error("{compressor} stage declares {declared} bytes but holds {actual}")]
    LengthMismatch {
        compressor: &'static str,
        declared: usize,
        actual: String,
    },
    #[error("malformed {compressor} stage: {detail}")]
    Malformed {
        compressor: &'static str,
        detail: String,
    },
    #[error("truncated inner request")]
    TruncatedInner,
    #[error("cannot compress with {compressor}: {detail}")]
    Compress {
        compressor: &'static str,
        detail: String,
    },
    #[error("request too large to compress: {0} bytes")]
    TooLarge(usize),
}

/// One of IoTDB's pipe compressors (`PipeCompressor.PipeCompressionType`; the codes differ from
/// TsFile's `CompressionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressor {
    Snappy,
    Gzip,
    Lz4,
    /// The level only matters when compressing; a zstd frame is read the same whatever it was.
    Zstd {
        level: i32,
    },
    Lzma2,
}

impl Compressor {
    /// The names `compressor` accepts, in IoTDB's order.
    pub const NAMES: [&'static str; 5] = ["snappy", "gzip", "lz4", "zstd", "lzma2"];

    /// The compressor a (lower-case, trimmed) `compressor` list item names.
    pub fn from_name(name: &str, zstd_level: i32) -> Option<Compressor> {
        match name {
            "snappy" => Some(Compressor::Snappy),
            "gzip" => Some(Compressor::Gzip),
            "lz4" => Some(Compressor::Lz4),
            "zstd" => Some(Compressor::Zstd { level: zstd_level }),
            "lzma2" => Some(Compressor::Lzma2),
            _ => None,
        }
    }

    /// The compressor a stage's type byte names.
    pub fn from_code(code: u8) -> Option<Compressor> {
        match code {
            0 => Some(Compressor::Snappy),
            1 => Some(Compressor::Gzip),
            2 => Some(Compressor::Lz4),
            3 => Some(Compressor::Zstd {
                level: ZSTD_DEFAULT_LEVEL,
            }),
            4 => Some(Compressor::Lzma2),
            _ => None,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Compressor::Snappy => 0,
            Compressor::Gzip => 1,
            Compressor::Lz4 => 2,
            Compressor::Zstd { .. } => 3,
            Compressor::Lzma2 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compressor::Snappy => "snappy",
            Compressor::Gzip => "gzip",
            Compressor::Lz4 => "lz4",
            Compressor::Zstd { .. } => "zstd",
            Compressor::Lzma2 => "lzma2",
        }
    }

    /// Compresses `data` in the format IoTDB's Java compressor of the same code writes.
    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>, CompressError> {
        let failed = |detail: String| CompressError::Compress {
            compressor: self.name(),
            detail,
        };
        match self {
            Compressor::Snappy => snap::raw::Encoder::new()
                .compress_vec(data)
                .map_err(|e| failed(e.to_string())),
            Compressor::Gzip => {
                // Level 6: java.util.zip's Deflater.DEFAULT_COMPRESSION.
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(data.len() / 2 + 32),
                    flate2::Compression::new(6),
                );
                std::io::Write::write_all(&mut encoder, data).map_err(|e| failed(e.to_string()))?;
                encoder.finish().map_err(|e| failed(e.to_string()))
            }
            Compressor::Lz4 => Ok(lz4_flex::block::compress(data)),
            Compressor::Zstd { level } => {
                zstd::bulk::compress(data, level).map_err(|e| failed(e.to_string()))
            }
            Compressor::Lzma2 => {
                let stream = liblzma::stream::Stream::new_easy_encoder(
                    XZ_PRESET,
                    liblzma::stream::Check::Crc64,
                )
                .map_err(|e| failed(e.to_string()))?;
                let mut encoder = liblzma::write::XzEncoder::new_stream(
                    Vec::with_capacity(data.len() / 2 + 64),
                    stream,
                );
                std::io::Write::write_all(&mut encoder, data).map_err(|e| failed(e.to_string()))?;
                encoder.finish().map_err(|e| failed(e.to_string()))
            }
        }
    }

    /// Decompresses one stage that declares `declared` bytes: exactly that many, or an error.
    pub fn decompress(self, data: &[u8], declared: usize) -> Result<Vec<u8>, CompressError> {
        let name = self.name();
        let malformed = |detail: String| CompressError::Malformed {
            compressor: name,
            detail,
        };
        let cannot_expand = |max_expansion: usize| {
            if declared > data.len().saturating_mul(max_expansion) {
                Err(CompressError::CannotExpand {
                    compressor: name,
                    compressed: data.len(),
                    declared,
                })
            } else {
                Ok(())
            }
        };
        match self {
            Compressor::Snappy => {
                let own = snap::raw::decompress_len(data).map_err(|e| malformed(e.to_string()))?;
                if own != declared {
                    return Err(CompressError::LengthMismatch {
                        compressor: name,
                        declared,
                        actual: format!("{own} (its block header)"),
                    });
                }
                cannot_expand(SNAPPY_MAX_EXPANSION)?;
                snap::raw::Decoder::new()
                    .decompress_vec(data)
                    .map_err(|e| malformed(e.to_string()))
            }
            Compressor::Lz4 => {
                cannot_expand(LZ4_MAX_EXPANSION)?;
                let mut out = vec![0; declared];
                // Writes into exactly the declared length: a block that would go beyond is an error.
                let written = lz4_flex::block::decompress_into(data, &mut out)
                    .map_err(|e| malformed(e.to_string()))?;
                if written != declared {
                    return Err(CompressError::LengthMismatch {
                        compressor: name,
                        declared,
                        actual: written.to_string(),
                    });
                }
                Ok(out)
            }
            Compressor::Gzip => {
                read_declared(name, flate2::read::MultiGzDecoder::new(data), declared)
            }
            Compressor::Zstd { .. } => {
                let decoder = zstd::stream::read::Decoder::with_buffer(data)
                    .map_err(|e| malformed(e.to_string()))?;
                read_declared(name, decoder, declared)
            }
            Compressor::Lzma2 => {
                let stream = liblzma::stream::Stream::new_stream_decoder(
                    XZ_DECODER_MEMORY_LIMIT,
                    liblzma::stream::CONCATENATED,
                )
                .map_err(|e| malformed(e.to_string()))?;
                read_declared(
                    name,
                    liblzma::read::XzDecoder::new_stream(data, stream),
                    declared,
                )
            }
        }
    }
}

/// Makes room for `additional` more bytes in `buf`, growing geometrically but never past `limit`
/// in total: what a buffer reserves follows what was really written into it, whatever a header
/// claimed, and a buffer that grows to its limit ends exactly there.
pub fn reserve_within(
    buf: &mut Vec<u8>,
    additional: usize,
    limit: usize,
) -> Result<(), std::collections::TryReserveError> {
    let needed = buf.len().saturating_add(additional);
    if needed <= buf.capacity() {
        return Ok(());
    }
    let target = buf
        .capacity()
        .saturating_mul(2)
        .max(needed)
        .max(64 << 10)
        .min(limit.max(needed));
    buf.try_reserve_exact(target - buf.len())
}

/// Reads a stream decoder's output, which must be exactly `declared` bytes: it is read through a
/// limit of `declared` into a buffer that grows with what the decoder produces, then one more byte
/// must not exist (that read also makes the decoder check the stream's end: gzip's CRC and length,
/// xz's index and check).
fn read_declared(
    compressor: &'static str,
    mut reader: impl Read,
    declared: usize,
) -> Result<Vec<u8>, CompressError> {
    let malformed = |e: std::io::Error| CompressError::Malformed {
        compressor,
        detail: e.to_string(),
    };
    // `out[..filled]` is output; `out[filled..]` is zeroed room for the next read, added (and zeroed)
    // only when the room before it is used up, so every byte is zeroed once.
    let mut out = Vec::new();
    let mut filled = 0;
    while filled < declared {
        if filled == out.len() {
            reserve_within(&mut out, 1, declared).map_err(|e| CompressError::Malformed {
                compressor,
                detail: format!("cannot reserve memory for {declared} bytes: {e}"),
            })?;
            out.resize(out.capacity().min(declared), 0);
        }
        match reader.read(&mut out[filled..]) {
            Ok(0) => {
                return Err(CompressError::LengthMismatch {
                    compressor,
                    declared,
                    actual: filled.to_string(),
                })
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(malformed(e)),
        }
    }
    let mut probe = [0u8; 1];
    loop {
        match reader.read(&mut probe) {
            Ok(0) => return Ok(out),
            Ok(_) => {
                return Err(CompressError::LengthMismatch {
                    compressor,
                    declared,
                    actual: "more".to_string(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(malformed(e)),
        }
    }
}

/// Wraps a request (`version`, `type_`, `body`) into IoTDB's compressed request, applying
/// `compressors` in order; each stage's header records the length of its input, as IoTDB's
/// `PipeTransferCompressedReq.toTPipeTransferReq` does.
pub fn compress(
    version: i8,
    type_: i16,
    body: &[u8],
    compressors: &[Compressor],
) -> Result<Vec<u8>, CompressError> {
    if compressors.len() > MAX_COMPRESSION_STAGES {
        return Err(CompressError::TooManyStages(compressors.len()));
    }
    let mut data = Vec::with_capacity(body.len() + 3);
    data.put_i8(version);
    data.put_i16(type_);
    data.extend_from_slice(body);
    let mut header = Vec::with_capacity(1 + 5 * compressors.len());
    header.put_u8(u8::try_from(compressors.len()).unwrap_or(u8::MAX));
    for compressor in compressors {
        header.put_u8(compressor.code());
        header.put_i32(i32::try_from(data.len()).map_err(|_| CompressError::TooLarge(data.len()))?);
        data = compressor.compress(&data)?;
    }
    header.extend_from_slice(&data);
    Ok(header)
}

/// Unwraps a compressed request into (version, type, body), undoing each stage in reverse order.
///
/// Every declared length is checked against [`MAX_DECOMPRESSED_BYTES`] (IoTDB's message) before any
/// stage is decompressed, and each stage yields exactly its declared length or an error.
pub fn decompress(body: &[u8]) -> Result<(i8, i16, Vec<u8>), CompressError> {
    let mut input = ByteReader::new(body);
    let n = usize::from(
        input
            .u8("compression stage count")
            .map_err(|_| CompressError::Empty)?,
    );
    if n > MAX_COMPRESSION_STAGES {
        return Err(CompressError::TooManyStages(n));
    }
    let header = |read: crate::Result<[u8; 5]>| read.map_err(|_| CompressError::TruncatedHeader);
    let mut stages = Vec::with_capacity(n);
    for _ in 0..n {
        let [code, length @ ..] = header(input.array::<5>("compression stage"))?;
        let length = i32::from_be_bytes(length);
        let compressor =
            Compressor::from_code(code).ok_or(CompressError::UnknownCompressor(code))?;
        let length = usize::try_from(length)
            .ok()
            .filter(|l| *l <= MAX_DECOMPRESSED_BYTES)
            .ok_or(CompressError::DeclaredLength(i64::from(length)))?;
        stages.push((compressor, length));
    }
    let mut data = input.rest().to_vec();
    for (compressor, length) in stages.into_iter().rev() {
        data = compressor.decompress(&data, length)?;
    }
    let mut inner = ByteReader::new(&data);
    let truncated = |_| CompressError::TruncatedInner;
    let [version] = inner.array::<1>("request version").map_err(truncated)?;
    let type_ = inner.i16("request type").map_err(truncated)?;
    Ok((i8::from_be_bytes([version]), type_, inner.rest().to_vec()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    const ALL: [Compressor; 5] = [
        Compressor::Snappy,
        Compressor::Gzip,
        Compressor::Lz4,
        Compressor::Zstd {
            level: ZSTD_DEFAULT_LEVEL,
        },
        Compressor::Lzma2,
    ];

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A tablet-like body: repetitive enough to compress, varied enough not to be trivial.
    fn sample_body(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| match i % 16 {
                0..=9 => b"root.sg.d1"[i % 16],
                _ => (i / 16 % 7) as u8,
            })
            .collect()
    }

    /// A compressed request body with one stage of `code` declaring `declared` bytes.
    fn one_stage(code: u8, declared: usize, stage: &[u8]) -> Vec<u8> {
        let mut body = vec![1, code];
        body.extend_from_slice(&(declared as i32).to_be_bytes());
        body.extend_from_slice(stage);
        body
    }

    #[test]
    fn every_compressor_and_chains_of_them_round_trip() {
        let body = sample_body(100_000);
        for compressor in ALL {
            let wrapped = compress(1, 13, &body, &[compressor]).unwrap();
            assert_eq!(wrapped[..2], [1, compressor.code()], "{compressor:?}");
            assert_eq!(
                wrapped[2..6],
                (body.len() as i32 + 3).to_be_bytes(),
                "{compressor:?}: the stage declares its input's length"
            );
            assert!(
                wrapped.len() < body.len() / 4,
                "{compressor:?}: {} bytes",
                wrapped.len()
            );
            assert_eq!(decompress(&wrapped).unwrap(), (1, 13, body.clone()));
        }
        // Chains: each stage records the length of its own input, and they are undone in reverse.
        let chains: [&[Compressor]; 3] = [
            &[Compressor::Gzip, Compressor::Zstd { level: 19 }],
            &[Compressor::Lz4, Compressor::Lzma2],
            &ALL,
        ];
        for chain in chains {
            let wrapped = compress(1, 1001, &body, chain).unwrap();
            assert_eq!(usize::from(wrapped[0]), chain.len());
            assert_eq!(
                decompress(&wrapped).unwrap(),
                (1, 1001, body.clone()),
                "{chain:?}"
            );
        }
        // Every zstd level IoTDB accepts compresses (negative levels are zstd's fast modes).
        for level in [ZSTD_MIN_LEVEL, -5, 1, ZSTD_MAX_LEVEL] {
            let wrapped = compress(1, 13, &body[..10_000], &[Compressor::Zstd { level }]).unwrap();
            assert_eq!(
                decompress(&wrapped).unwrap().2,
                body[..10_000],
                "level {level}"
            );
        }
        // An empty body too.
        for compressor in ALL {
            let wrapped = compress(1, 51, &[], &[compressor]).unwrap();
            assert_eq!(
                decompress(&wrapped).unwrap(),
                (1, 51, vec![]),
                "{compressor:?}"
            );
        }
    }

    /// Bytes written by the Java libraries IoTDB's compressors call, with the calls IoTDB makes
    /// (OpenJDK 17 `java.util.zip.GZIPOutputStream`; lz4-java 1.8.0
    /// `LZ4Factory.fastestInstance().fastCompressor().compress`; zstd-jni 1.5.2-5
    /// `Zstd.compress(data, 3)`; xz-java 1.9 `new XZOutputStream(out, new LZMA2Options())`), run
    /// once on `JAVA_PAYLOAD` (an inner request: version 1, type 13, then text).
    const JAVA_PAYLOAD: &str = "01000d726f6f742e73672e64312e733020494e54363420726f6f742e73672e64312e733120494e54363420726f6f742e73672e64312e733220494e54363420726f6f742e73672e64312e733320494e54363420726f6f742e73672e64312e733420494e54363420726f6f742e73672e64312e733520494e54363420";
    const JAVA_GZIP: &str = "1f8b08000000000000ff6364e02dcacf2fd12b4ed74b31d42b3650f0f40b313351401633c422668445cc188b9809163153a81800973054837b000000";
    const JAVA_LZ4: &str = "f80801000d726f6f742e73672e64312e733020494e5436342014001f311400001f321400001f331400001f34140000803520494e54363420";
    const JAVA_ZSTD: &str = "28b52ffd207b950100340201000d726f6f742e73672e64312e733020494e54363420313233343520494e5436342005002011901c481848c4e36613";
    const JAVA_LZMA2: &str = "fd377a585a000004e6d6b4460200210116000000742fe5a3e0007a002a5d000080008ee4c86ee5d01e4bd920c11400deece17865cd64029fddfc8bdc4c2b7de5e9edf49485b9b62e28000000af600d27d644a42b0001467b1cf572411fb6f37d010000000004595a";

    #[test]
    fn what_the_java_compressors_write_is_read() {
        let payload = unhex(JAVA_PAYLOAD);
        assert_eq!(payload.len(), 123);
        for (code, fixture) in [
            (1, JAVA_GZIP),
            (2, JAVA_LZ4),
            (3, JAVA_ZSTD),
            (4, JAVA_LZMA2),
        ] {
            let body = one_stage(code, payload.len(), &unhex(fixture));
            assert_eq!(
                decompress(&body).unwrap(),
                (1, 13, payload[3..].to_vec()),
                "compressor {code}"
            );
        }
        // And snappy, whose raw block format the existing receiver already read: a hand-made block
        // (varint length 5, one literal of 5 bytes).
        let body = one_stage(0, 5, &[5, 4 << 2, 1, 0, 13, b'h', b'i']);
        assert_eq!(decompress(&body).unwrap(), (1, 13, b"hi".to_vec()));
        // The formats are the ones named: a gzip member header, a bare LZ4 block (its first byte a
        // sequence token, no frame magic), a zstd frame, an .xz stream.
        assert_eq!(unhex(JAVA_GZIP)[..3], [0x1f, 0x8b, 8]);
        assert_ne!(unhex(JAVA_LZ4)[..4], [0x04, 0x22, 0x4d, 0x18]);
        assert_eq!(unhex(JAVA_ZSTD)[..4], [0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(unhex(JAVA_LZMA2)[..6], [0xfd, b'7', b'z', b'X', b'Z', 0]);
        // Duet writes the same formats: its output starts the same way.
        let ours = |c: Compressor| c.compress(&payload).unwrap();
        assert_eq!(ours(Compressor::Gzip)[..3], [0x1f, 0x8b, 8]);
        assert_eq!(
            ours(Compressor::Zstd { level: 3 })[..4],
            [0x28, 0xb5, 0x2f, 0xfd]
        );
        assert_eq!(
            ours(Compressor::Lzma2)[..6],
            [0xfd, b'7', b'z', b'X', b'Z', 0]
        );
    }

    #[test]
    fn truncated_or_corrupt_stages_are_errors() {
        let body = sample_body(3_000);
        for compressor in ALL {
            let wrapped = compress(1, 13, &body, &[compressor]).unwrap();
            // Every truncation: of the header, or of the compressed bytes.
            for cut in 0..wrapped.len() {
                assert!(
                    decompress(&wrapped[..cut]).is_err(),
                    "{compressor:?} cut at {cut} of {}",
                    wrapped.len()
                );
            }
            // Every single-byte corruption is an error or, where the format has no checksum over
            // the data (snappy, LZ4, zstd as Java writes it), exactly the declared length of
            // other bytes; never a panic.
            let mut corrupt = wrapped.clone();
            for i in 6..corrupt.len() {
                corrupt[i] ^= 0x55;
                if let Ok((_, _, inner)) = decompress(&corrupt) {
                    assert_eq!(inner.len(), body.len(), "{compressor:?} byte {i}");
                    // gzip's header bytes 4..10 (modification time, extra flags, OS) mean nothing.
                    let gzip_metadata = compressor == Compressor::Gzip && (10..16).contains(&i);
                    assert!(
                        gzip_metadata
                            || matches!(
                                compressor,
                                Compressor::Snappy | Compressor::Lz4 | Compressor::Zstd { .. }
                            ),
                        "{compressor:?}: corrupt byte {i} went unnoticed"
                    );
                }
                corrupt[i] ^= 0x55;
            }
            // Trailing garbage after the stage.
            let mut trailing = wrapped.clone();
            trailing.extend_from_slice(b"garbage");
            assert!(
                decompress(&trailing).is_err(),
                "{compressor:?} with garbage"
            );
            // Another compressor's bytes.
            let mut swapped = wrapped.clone();
            swapped[1] = (compressor.code() + 1) % 5;
            assert!(
                decompress(&swapped).is_err(),
                "{compressor:?} read as another"
            );
        }
        let err = decompress(&one_stage(9, 3, b"abc")).unwrap_err();
        assert!(
            err.to_string().contains("compressor type 9 is unknown"),
            "{err}"
        );
        assert!(matches!(decompress(&[]), Err(CompressError::Empty)));
    }

    #[test]
    fn a_declared_length_that_lies_is_an_error() {
        let body = sample_body(5_000);
        for compressor in ALL {
            let stage = compressor.compress(&body).unwrap();
            for declared in [0, body.len() - 1, body.len() + 1, 2 * body.len()] {
                let err = compressor.decompress(&stage, declared).unwrap_err();
                assert!(
                    matches!(
                        err,
                        CompressError::LengthMismatch { .. } | CompressError::Malformed { .. }
                    ),
                    "{compressor:?} declared {declared}: {err}"
                );
            }
            assert_eq!(compressor.decompress(&stage, body.len()).unwrap(), body);
        }
        // Lengths outside [0, 1 GiB] are refused before anything else, with IoTDB's message.
        for declared in [-1, (MAX_DECOMPRESSED_BYTES + 1) as i32, i32::MAX] {
            let err = decompress(
                &one_stage(1, 0, b"")[..2]
                    .iter()
                    .copied()
                    .chain(declared.to_be_bytes())
                    .collect::<Vec<u8>>(),
            )
            .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "Decompressed length should be between 0 and 1073741824, but got {declared}."
                )
            );
        }
    }

    /// Concatenations of `piece` (a gzip member, a zstd frame, an .xz stream: each format's decoder
    /// reads on into the next) that together inflate to 1 GiB from about a megabyte.
    fn gigabyte_bomb(piece: &[u8], piece_output: usize) -> Vec<u8> {
        let n = MAX_DECOMPRESSED_BYTES / piece_output;
        piece.repeat(n)
    }

    #[test]
    fn bombs_stop_at_the_declared_length() {
        let zeros = vec![0u8; 16 << 20];
        let gzip = Compressor::Gzip.compress(&zeros).unwrap();
        let zstd = Compressor::Zstd { level: 1 }.compress(&zeros).unwrap();
        let xz = {
            let stream =
                liblzma::stream::Stream::new_easy_encoder(0, liblzma::stream::Check::Crc64)
                    .unwrap();
            let mut encoder = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
            std::io::Write::write_all(&mut encoder, &zeros).unwrap();
            encoder.finish().unwrap()
        };
        for (compressor, piece) in [
            (Compressor::Gzip, gzip),
            (Compressor::Zstd { level: 1 }, zstd),
            (Compressor::Lzma2, xz),
        ] {
            let bomb = gigabyte_bomb(&piece, zeros.len());
            assert!(bomb.len() < 4 << 20, "{compressor:?}: {} bytes", bomb.len());
            let started = Instant::now();
            let err = decompress(&one_stage(compressor.code(), 1024, &bomb)).unwrap_err();
            assert!(
                matches!(err, CompressError::LengthMismatch { ref actual, .. } if actual == "more"),
                "{compressor:?}: {err}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{compressor:?} took {:?}",
                started.elapsed()
            );
        }
        // The block formats cannot expand past a ratio: a claim beyond it is refused before the
        // output is allocated, and a block that would write past the declared length is an error.
        let lz4 = Compressor::Lz4.compress(&zeros[..1 << 20]).unwrap();
        let err = decompress(&one_stage(2, MAX_DECOMPRESSED_BYTES, &lz4)).unwrap_err();
        assert!(err.to_string().contains("cannot expand"), "{err}");
        let err = decompress(&one_stage(2, 1024, &lz4)).unwrap_err();
        assert!(matches!(err, CompressError::Malformed { .. }), "{err}");
        let mut snappy = vec![1, 0];
        snappy.extend_from_slice(&(MAX_DECOMPRESSED_BYTES as i32).to_be_bytes());
        // Snappy's preamble: the uncompressed length as a varint (2^30), then one literal byte.
        snappy.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x41]);
        let err = decompress(&snappy).unwrap_err();
        assert!(err.to_string().contains("cannot expand"), "{err}");
        // More stages than any sender uses.
        let mut body = vec![255];
        body.extend(std::iter::repeat_n(0, 255 * 5));
        assert!(matches!(
            decompress(&body),
            Err(CompressError::TooManyStages(255))
        ));
    }

    /// CRC-32 (IEEE, reflected), bit by bit: the check of an .xz block header.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// An .xz header whose LZMA2 dictionary is 4 GiB - 1 (property byte 40) is refused by the
    /// decoder's memory limit instead of being allocated.
    #[test]
    fn an_xz_dictionary_beyond_the_memory_limit_is_refused() {
        let mut xz = Compressor::Lzma2.compress(b"tiny").unwrap();
        // Stream header (12 bytes), block header size byte, flags, filter id 0x21, props size 1,
        // then the dictionary property.
        assert_eq!(xz[14..17], [0x21, 0x01, 0x16]);
        xz[16] = 40;
        // The block header's CRC32 covers it: recompute, so only the memory limit can refuse it.
        let header_len = (usize::from(xz[12]) + 1) * 4;
        let crc = crc32(&xz[12..12 + header_len - 4]);
        xz[12 + header_len - 4..12 + header_len].copy_from_slice(&crc.to_le_bytes());
        let err = Compressor::Lzma2.decompress(&xz, 4).unwrap_err();
        assert!(err.to_string().to_lowercase().contains("memory"), "{err}");
    }
}
