//! The serialized device template of `createSchemaTemplate` (`TSCreateSchemaTemplateReq.serializedTemplate`),
//! as the official clients write it (Python's `Template.serialize`, Java's `Template.serialize`) and
//! IoTDB's `StatementGenerator` reads it: strings are an i32 big-endian length and UTF-8 bytes, flags
//! and codes one byte each. Layout: template name, aligned flag, then until the buffer ends, per
//! measurement: prefix (`""` for a measurement directly under the template), the prefix's aligned
//! flag, measurement name, data type, encoding and compressor codes.
//!
//! Decoding goes through [`ByteReader`], so truncated or hostile bytes are an error, never a panic,
//! and nothing is allocated beyond the bytes present.

use crate::reader::ByteReader;
use crate::Result;

/// One measurement entry of a serialized template, with its codes as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerializedMeasurement {
    /// The path of the inner node the measurement sits under; `None` when the client wrote a null
    /// string (length -1).
    pub prefix: Option<String>,
    /// Whether the measurements under `prefix` are aligned.
    pub aligned: bool,
    /// `None` when the client wrote a null string (IoTDB refuses it by name).
    pub name: Option<String>,
    pub data_type: u8,
    pub encoding: u8,
    pub compressor: u8,
}

/// A decoded serialized template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerializedTemplate {
    /// The name inside the bytes (IoTDB uses the request's `name` instead and skips this one).
    pub name: Option<String>,
    /// The template-level aligned flag (the Python client's `share_time`).
    pub aligned: bool,
    pub measurements: Vec<SerializedMeasurement>,
}

/// The smallest measurement entry: two empty strings' lengths and four one-byte fields.
const MIN_MEASUREMENT_BYTES: usize = 4 + 1 + 4 + 3;

/// Decodes a serialized template; any byte left over that is not a whole measurement is an error.
pub fn decode(bytes: &[u8]) -> Result<SerializedTemplate> {
    let mut reader = ByteReader::new(bytes);
    let name = reader.nullable_string("template name")?;
    let aligned = reader.u8("template aligned flag")? != 0;
    // Every entry takes at least MIN_MEASUREMENT_BYTES, so this bounds the vector by the input.
    let mut measurements = Vec::with_capacity(reader.remaining() / MIN_MEASUREMENT_BYTES);
    while !reader.is_empty() {
        let prefix = reader.nullable_string("measurement prefix")?;
        let prefix_aligned = reader.u8("prefix aligned flag")? != 0;
        let name = reader.nullable_string("measurement name")?;
        measurements.push(SerializedMeasurement {
            prefix,
            aligned: prefix_aligned,
            name,
            data_type: reader.u8("measurement data type")?,
            encoding: reader.u8("measurement encoding")?,
            compressor: reader.u8("measurement compressor")?,
        });
    }
    Ok(SerializedTemplate {
        name,
        aligned,
        measurements,
    })
}

fn put_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            // A string longer than i32::MAX bytes cannot be framed; callers are tests and seeds.
            out.extend_from_slice(&i32::try_from(s.len()).unwrap_or(i32::MAX).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

/// Encodes a template as the clients do (for tests and the fuzz corpus).
pub fn encode(template: &SerializedTemplate) -> Vec<u8> {
    let mut out = Vec::new();
    put_string(&mut out, template.name.as_deref());
    out.push(u8::from(template.aligned));
    for m in &template.measurements {
        put_string(&mut out, m.prefix.as_deref());
        out.push(u8::from(m.aligned));
        put_string(&mut out, m.name.as_deref());
        out.extend_from_slice(&[m.data_type, m.encoding, m.compressor]);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The bytes the Python client 2.0.11 sends for `Template("t1", share_time=True)` with
    /// `MeasurementNode("s1", INT64, RLE, SNAPPY)` (struct format `>i2s?i0s?i2sccc`).
    fn python_bytes() -> Vec<u8> {
        let mut b = vec![0, 0, 0, 2, b't', b'1', 1];
        b.extend_from_slice(&[0, 0, 0, 0, 1]);
        b.extend_from_slice(&[0, 0, 0, 2, b's', b'1', 2, 2, 1]);
        b
    }

    #[test]
    fn decodes_the_python_clients_bytes() {
        let t = decode(&python_bytes()).unwrap();
        assert_eq!(t.name.as_deref(), Some("t1"));
        assert!(t.aligned);
        assert_eq!(
            t.measurements,
            vec![SerializedMeasurement {
                prefix: Some(String::new()),
                aligned: true,
                name: Some("s1".into()),
                data_type: 2,
                encoding: 2,
                compressor: 1,
            }]
        );
        assert_eq!(encode(&t), python_bytes());
    }

    #[test]
    fn a_template_without_measurements_decodes() {
        let t = decode(&[0, 0, 0, 1, b'x', 0]).unwrap();
        assert_eq!(t.name.as_deref(), Some("x"));
        assert!(!t.aligned && t.measurements.is_empty());
    }

    #[test]
    fn null_strings_are_kept_as_none() {
        let t = SerializedTemplate {
            name: None,
            aligned: false,
            measurements: vec![SerializedMeasurement {
                prefix: None,
                aligned: false,
                name: None,
                data_type: 0,
                encoding: 0,
                compressor: 0,
            }],
        };
        assert_eq!(decode(&encode(&t)).unwrap(), t);
    }

    #[test]
    fn hostile_lengths_and_truncations_are_errors() {
        // A name claiming i32::MAX bytes.
        let err = decode(&[0x7f, 0xff, 0xff, 0xff, b'a'])
            .unwrap_err()
            .to_string();
        assert!(err.contains("template name"), "{err}");
        // A measurement name claiming more than is left.
        let mut b = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[0x40, 0, 0, 0, b's']);
        let err = decode(&b).unwrap_err().to_string();
        assert!(err.contains("measurement name"), "{err}");
        // A cut inside the header or the entry is an error; the header alone is an empty template.
        let full = python_bytes();
        for cut in 0..full.len() {
            match decode(&full[..cut]) {
                Ok(t) => assert!(cut == 7 && t.measurements.is_empty(), "cut at {cut}"),
                Err(_) => assert_ne!(cut, 7),
            }
        }
        // A trailing partial entry.
        let mut b = python_bytes();
        b.extend_from_slice(&[0, 0, 0]);
        assert!(decode(&b).is_err());
        assert!(decode(&[]).is_err());
    }
}
