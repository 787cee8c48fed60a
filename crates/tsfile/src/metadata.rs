//! The file's tail: `TsFileMetadata` followed by its int32 length and the magic
//! (`TsFileIOWriter.endFile`, `TsFileMetadata.serializeTo`, `MetadataIndexNode`, `TableSchema`,
//! `MeasurementSchema.serializeTo`, apache/tsfile a9f54614). The reader needs its `metaOffset`
//! (where the data section ends with a SEPARATOR), the table schemas and the properties (an
//! encrypted file is refused); the index tree itself is walked only as far as parsing needs.

use std::collections::BTreeMap;

use crate::bytes::Cursor;
use crate::error::{corrupt, Result, TsFileError};
use crate::format::DeviceId;
use crate::types::DataType;

/// A table-model column's role (`ColumnCategory` / `ColumnType` ordinal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnCategory {
    Tag,
    Field,
    Attribute,
    Time,
    Other(i32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableColumn {
    pub name: String,
    pub data_type: Option<DataType>,
    pub category: ColumnCategory,
}

/// What the tail says about the file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileMetadata {
    /// Where the data section ends (the SEPARATOR marker).
    pub meta_offset: u64,
    /// The tables of the device index (in the tree model one per first device-id segment).
    pub tables: Vec<String>,
    /// Table-model schemas, by table name (empty for tree-model files).
    pub table_schemas: BTreeMap<String, Vec<TableColumn>>,
    /// File properties (`encryptLevel`, writer-added keys); a null value is `None`.
    pub properties: BTreeMap<String, Option<String>>,
}

/// Skips one `MetadataIndexNode` (device-level entries carry a device id, measurement-level ones a
/// name), each followed by an int64 offset; then the node's end offset and type.
fn skip_index_node(c: &mut Cursor<'_>, device_level: bool) -> Result<()> {
    let n = c.count(9, "index node child count")?;
    for _ in 0..n {
        if device_level {
            DeviceId::parse(c)?;
        } else {
            c.var_string("index entry name")?;
        }
        c.i64_be("index entry offset")?;
    }
    c.i64_be("index node end offset")?;
    c.u8("index node type")?;
    Ok(())
}

pub(crate) fn parse(tail: &[u8], base: u64) -> Result<FileMetadata> {
    let mut c = Cursor::new(tail, base);
    let n = c.count(2, "table index count")?;
    let mut tables = Vec::with_capacity(n);
    for _ in 0..n {
        tables.push(c.var_string("table name")?.unwrap_or_default());
        skip_index_node(&mut c, true)?;
    }
    let n = c.count(2, "table schema count")?;
    let mut table_schemas = BTreeMap::new();
    for _ in 0..n {
        let name = c.var_string("table name")?.unwrap_or_default();
        let columns = c.count(15, "table column count")?;
        let mut schema = Vec::with_capacity(columns);
        for _ in 0..columns {
            let column = c.int_string("column name")?.unwrap_or_default();
            let type_code = c.u8("column type")?;
            c.u8("column encoding")?;
            c.u8("column compressor")?;
            let at = c.offset();
            let props = c.i32_be("column property count")?;
            if props < 0 || props as usize > c.remaining() / 8 {
                return Err(corrupt(at, format!("column property count {props}")));
            }
            for _ in 0..props {
                c.int_string("column property key")?;
                c.int_string("column property value")?;
            }
            let category = match c.i32_be("column category")? {
                0 => ColumnCategory::Tag,
                1 => ColumnCategory::Field,
                2 => ColumnCategory::Attribute,
                3 => ColumnCategory::Time,
                other => ColumnCategory::Other(other),
            };
            schema.push(TableColumn {
                name: column,
                data_type: DataType::from_code(i32::from(type_code)),
                category,
            });
        }
        table_schemas.insert(name, schema);
    }
    let meta_offset = c.i64_be("metadata offset")?;
    let meta_offset = u64::try_from(meta_offset)
        .map_err(|_| corrupt(c.offset(), format!("metadata offset {meta_offset}")))?;
    let mut properties = BTreeMap::new();
    if !c.is_empty() {
        let len = c.uvarint("bloom filter length")? as usize;
        c.skip(len, "bloom filter")?;
        if len != 0 {
            c.uvarint("bloom filter size")?;
            c.uvarint("bloom filter hash count")?;
        }
    }
    if !c.is_empty() {
        // Written with `writeVarInt` (zig-zag).
        let at = c.offset();
        let n = c.varint("property count")?;
        if n < 0 || n as usize > c.remaining() {
            return Err(corrupt(at, format!("property count {n}")));
        }
        for _ in 0..n {
            let key = c.var_string("property key")?.unwrap_or_default();
            let value = c.var_string("property value")?;
            properties.insert(key, value);
        }
    }
    if let Some(Some(level)) = properties.get("encryptLevel") {
        if level != "0" {
            return Err(TsFileError::Unsupported(format!(
                "encrypted TsFile (encryptLevel {level}, encryptType {})",
                properties
                    .get("encryptType")
                    .cloned()
                    .flatten()
                    .unwrap_or_default()
            )));
        }
    }
    Ok(FileMetadata {
        meta_offset,
        tables,
        table_schemas,
        properties,
    })
}
