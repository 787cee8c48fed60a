//! IoTDB's `TSDataType`: the ten data types with their codes (tablets, records, plan nodes, TsFile
//! headers: one numbering, reference §5.2) and their names (SQL keywords, `dataTypeList`, SHOW
//! output). The wire protocol (`proto`), the SQL parser (`parser`) and the TsFile reader (`tsfile`)
//! depend on no other Duet crate and on each other not at all, so the one table lives here, in a
//! crate that depends on nothing.

use std::fmt;

/// IoTDB's `TSDataType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    Boolean,
    Int32,
    Int64,
    Float,
    Double,
    Text,
    Timestamp,
    Date,
    Blob,
    String,
}

impl DataType {
    pub const ALL: [DataType; 10] = [
        DataType::Boolean,
        DataType::Int32,
        DataType::Int64,
        DataType::Float,
        DataType::Double,
        DataType::Text,
        DataType::Timestamp,
        DataType::Date,
        DataType::Blob,
        DataType::String,
    ];

    /// The code used in tablets, records, `createTimeseries` and TsFile headers.
    pub fn code(self) -> u8 {
        match self {
            DataType::Boolean => 0,
            DataType::Int32 => 1,
            DataType::Int64 => 2,
            DataType::Float => 3,
            DataType::Double => 4,
            DataType::Text => 5,
            DataType::Timestamp => 8,
            DataType::Date => 9,
            DataType::Blob => 10,
            DataType::String => 11,
        }
    }

    pub fn from_code(code: i32) -> Option<DataType> {
        DataType::ALL
            .into_iter()
            .find(|t| i32::from(t.code()) == code)
    }

    /// The name used in `dataTypeList` and in SQL (upper case).
    pub fn name(self) -> &'static str {
        match self {
            DataType::Boolean => "BOOLEAN",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Float => "FLOAT",
            DataType::Double => "DOUBLE",
            DataType::Text => "TEXT",
            DataType::Timestamp => "TIMESTAMP",
            DataType::Date => "DATE",
            DataType::Blob => "BLOB",
            DataType::String => "STRING",
        }
    }

    /// The type named `name`, in any case.
    pub fn from_name(name: &str) -> Option<DataType> {
        DataType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The physical type written in a TsBlock header: the Python client only accepts these
    /// (reference §6.3): DATE travels as INT32, TIMESTAMP as INT64, STRING and BLOB as TEXT.
    pub fn physical(self) -> DataType {
        match self {
            DataType::Date => DataType::Int32,
            DataType::Timestamp => DataType::Int64,
            DataType::Blob | DataType::String => DataType::Text,
            other => other,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_read_back() {
        for t in DataType::ALL {
            assert_eq!(DataType::from_code(i32::from(t.code())), Some(t));
            assert_eq!(DataType::from_name(&t.name().to_lowercase()), Some(t));
        }
        assert_eq!(
            DataType::from_code(6),
            None,
            "6 is TsFile's VECTOR, no series type"
        );
        assert_eq!(DataType::from_name("VECTOR"), None);
    }
}
