//! Page decompression. The framings are the writers' (apache/tsfile a9f54614 `ICompressor` /
//! `IUnCompressor` for Java, `cpp/src/compress/*.cc` for C++): SNAPPY raw blocks, LZ4 raw blocks
//! (no size prefix), GZIP the gzip container, ZSTD a zstd frame, LZMA2 the .xz container
//! (`XZOutputStream`, `lzma_easy_buffer_encode`). The page header's uncompressed size bounds every
//! output: a stream that yields more or less is corrupt, and no decompressor allocates more than
//! that size.

use std::io::Read;

use crate::error::{corrupt, Result, TsFileError};
use crate::types::Compression;

/// Decompresses one page body to exactly `uncompressed` bytes. `offset` is the page's file offset.
pub(crate) fn decompress(
    compression: Compression,
    input: &[u8],
    uncompressed: usize,
    offset: u64,
) -> Result<Vec<u8>> {
    let bad = |e: &dyn std::fmt::Display| corrupt(offset, format!("{compression} page: {e}"));
    let out = match compression {
        Compression::Uncompressed => input.to_vec(),
        Compression::Snappy => {
            let len = snap::raw::decompress_len(input).map_err(|e| bad(&e))?;
            if len != uncompressed {
                return Err(bad(&format!(
                    "{len} bytes inside, header says {uncompressed}"
                )));
            }
            snap::raw::Decoder::new()
                .decompress_vec(input)
                .map_err(|e| bad(&e))?
        }
        Compression::Lz4 => {
            // LZ4 expands at most 255:1; a larger claim is corrupt (and would size the buffer).
            if uncompressed > input.len().saturating_mul(255).saturating_add(16) {
                return Err(bad(&format!(
                    "{uncompressed} bytes claimed from {}",
                    input.len()
                )));
            }
            lz4_flex::block::decompress(input, uncompressed).map_err(|e| bad(&e))?
        }
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(input), uncompressed)
            .map_err(|e| bad(&e))?,
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(|e| bad(&e))?;
            read_bounded(decoder, uncompressed).map_err(|e| bad(&e))?
        }
        Compression::Lzma2 => {
            read_bounded(liblzma::read::XzDecoder::new(input), uncompressed).map_err(|e| bad(&e))?
        }
        Compression::Lzo | Compression::Sdt | Compression::Paa | Compression::Pla => {
            return Err(TsFileError::Unsupported(format!(
                "compressor {compression}"
            )));
        }
    };
    if out.len() != uncompressed {
        return Err(bad(&format!(
            "{} bytes after decompression, header says {uncompressed}",
            out.len()
        )));
    }
    Ok(out)
}

/// Reads a decompressing stream to its end, failing past `limit` bytes; the buffer grows with
/// what arrives.
fn read_bounded(reader: impl Read, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(limit.min(1 << 20));
    reader.take(limit as u64 + 1).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample() -> Vec<u8> {
        (0..5000u32).flat_map(|i| (i % 97).to_be_bytes()).collect()
    }

    #[test]
    fn every_supported_compressor_round_trips(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let data = sample();
        let snappy = snap::raw::Encoder::new().compress_vec(&data)?;
        let lz4 = lz4_flex::block::compress(&data);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data)?;
        let gz = gz.finish()?;
        let zstd = zstd::stream::encode_all(&data[..], 3)?;
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&data)?;
        let xz = xz.finish()?;
        for (c, bytes) in [
            (Compression::Uncompressed, data.clone()),
            (Compression::Snappy, snappy),
            (Compression::Lz4, lz4),
            (Compression::Gzip, gz),
            (Compression::Zstd, zstd),
            (Compression::Lzma2, xz),
        ] {
            assert_eq!(decompress(c, &bytes, data.len(), 0)?, data, "{c}");
            // A wrong size in the header is refused, larger or smaller.
            assert!(decompress(c, &bytes, data.len() + 1, 0).is_err(), "{c} +1");
            assert!(decompress(c, &bytes, data.len() - 1, 0).is_err(), "{c} -1");
            // Garbage never panics.
            let mut flipped = bytes.clone();
            for i in (0..flipped.len()).step_by(7) {
                flipped[i] ^= 0x5a;
            }
            let _ = decompress(c, &flipped, data.len(), 0);
        }
        assert!(matches!(
            decompress(Compression::Lzo, &[], 0, 0),
            Err(TsFileError::Unsupported(_))
        ));
        Ok(())
    }
}
