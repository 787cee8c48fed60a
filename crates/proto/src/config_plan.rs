//! IoTDB's ConfigNode plans as a pipe carries them in `TRANSFER_CONFIG_PLAN` (200): what an IoTDB
//! sender whose `inclusion` covers `schema.database` or `schema.ttl` sends. Each body is
//! `ConfigPhysicalPlan.serializeImpl`: the plan type (i16, `ConfigPhysicalPlanType`), then the plan's
//! fields. Layouts from apache/iotdb `iotdb-core/confignode/.../consensus/request/write/database/`
//! (`DatabaseSchemaPlan` at cb04b66, `DeleteDatabasePlan` at 66cc476, `SetTTLPlan` at 0bc9162) and
//! `ConfigPhysicalPlanType` at 01180dc. Plans Duet does not apply are refused by name.

use thrift::protocol::{TInputProtocol, TType};

use crate::input::BinaryInput;
use crate::reader::ByteReader;
use crate::{ProtoError, Result};

/// `ConfigPhysicalPlanType` codes Duet reads.
pub mod plan_type {
    pub const CREATE_DATABASE: i16 = 200;
    pub const SET_TTL: i16 = 201;
    pub const DELETE_DATABASE: i16 = 206;
    pub const ALTER_DATABASE: i16 = 210;
    pub const PIPE_SET_TTL: i16 = 1705;
}

/// A config plan Duet applies.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigPlan {
    /// `CREATE DATABASE` (and `ALTER DATABASE`, whose only effect Duet keeps is that it exists).
    CreateDatabase {
        name: String,
    },
    DeleteDatabase {
        name: String,
    },
    /// `SET TTL` (`UNSET TTL` too: IoTDB sends it as a TTL of -1, its `NULL_TTL`).
    SetTtl(TtlRule),
    /// `PipeSetTTLPlan`: the `SetTTLPlan`s a pipe's pattern produced from one statement.
    SetTtls(Vec<TtlRule>),
}

/// One `SetTTLPlan`.
#[derive(Debug, Clone, PartialEq)]
pub struct TtlRule {
    /// The path pattern, joined from its nodes.
    pub pattern: String,
    /// Milliseconds; `i64::MAX` is INF, and -1 (any value ≤ 0) means the rule is removed.
    pub ttl_ms: i64,
    /// IoTDB's `isDataBase`: the path is a database, and the rule covers what is under it too.
    pub database: bool,
}

fn malformed(message: impl Into<String>) -> ProtoError {
    ProtoError::Malformed(message.into())
}

/// The name IoTDB gives a plan type, for errors.
fn plan_name(code: i16) -> String {
    match code {
        202 => "SetSchemaReplicationFactor".into(),
        203 => "SetDataReplicationFactor".into(),
        204 => "SetTimePartitionInterval".into(),
        600..=699 => format!("an authority plan ({code})"),
        800..=899 => format!("a template or table plan ({code})"),
        1700 => "PipeEnriched".into(),
        1701 => "PipeUnsetTemplate".into(),
        1702 => "PipeDeleteTimeSeries".into(),
        1703 => "PipeDeleteLogicalView".into(),
        1704 => "PipeDeactivateTemplate".into(),
        2100..=2105 => format!("an authority plan ({code})"),
        other => format!("config plan type {other}"),
    }
}

/// Reads a `TRANSFER_CONFIG_PLAN` body.
pub fn decode_config_plan(body: &[u8]) -> Result<ConfigPlan> {
    let mut input = ByteReader::new(body);
    let code = input.i16("config plan type")?;
    match code {
        plan_type::CREATE_DATABASE | plan_type::ALTER_DATABASE => {
            // `ThriftConfigNodeSerDeUtils.serializeTDatabaseSchema`: a `TDatabaseSchema` in Thrift's
            // binary protocol; its field 1 is the database's name.
            let name = database_schema_name(input.rest())?;
            Ok(ConfigPlan::CreateDatabase { name })
        }
        plan_type::DELETE_DATABASE => {
            let name = input.string("database name")?;
            end(&input)?;
            Ok(ConfigPlan::DeleteDatabase { name })
        }
        plan_type::SET_TTL => {
            let (pattern, ttl_ms) = set_ttl(&mut input)?;
            // The flag after the TTL exists in newer releases only.
            let database = !input.is_empty() && input.u8("isDataBase")? != 0;
            end(&input)?;
            Ok(ConfigPlan::SetTtl(TtlRule {
                pattern,
                ttl_ms,
                database,
            }))
        }
        plan_type::PIPE_SET_TTL => {
            // A count, then whole `SetTTLPlan`s (type and fields) back to back: whether each
            // carries the newer flag byte is told by the layout that reads the body to its end.
            let n = input.count(14, "SetTTL plans")?;
            let mut first_error = None;
            for with_flag in [true, false] {
                let mut attempt = input;
                let parsed = (0..n)
                    .map(|_| {
                        let code = attempt.i16("config plan type")?;
                        if code != plan_type::SET_TTL {
                            return Err(malformed(format!(
                                "a PipeSetTTLPlan holding plan type {code}"
                            )));
                        }
                        let (pattern, ttl_ms) = set_ttl(&mut attempt)?;
                        let database = with_flag && attempt.u8("isDataBase")? != 0;
                        Ok(TtlRule {
                            pattern,
                            ttl_ms,
                            database,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
                    .and_then(|plans| end(&attempt).map(|()| plans));
                match parsed {
                    Ok(plans) => return Ok(ConfigPlan::SetTtls(plans)),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            Err(first_error.unwrap_or_else(|| malformed("malformed PipeSetTTLPlan")))
        }
        other => Err(ProtoError::Unsupported(format!(
            "{} is not a config plan Duet applies from a pipe",
            plan_name(other)
        ))),
    }
}

/// `SetTTLPlan`'s path nodes and TTL (the caller reads the flag that may follow).
fn set_ttl(input: &mut ByteReader<'_>) -> Result<(String, i64)> {
    let n = input.count(4, "path nodes")?;
    let nodes = (0..n)
        .map(|_| input.string("path node"))
        .collect::<Result<Vec<_>>>()?;
    let ttl_ms = input.i64("ttl")?;
    Ok((nodes.join("."), ttl_ms))
}

fn end(input: &ByteReader<'_>) -> Result<()> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(malformed(format!(
            "{} bytes after the config plan",
            input.remaining()
        )))
    }
}

/// Field 1 (`name`) of a binary-protocol `TDatabaseSchema`; the other fields are skipped.
fn database_schema_name(bytes: &[u8]) -> Result<String> {
    let mut protocol = BinaryInput::new(bytes);
    protocol.read_struct_begin()?;
    let mut name = None;
    loop {
        let field = protocol.read_field_begin()?;
        if field.field_type == TType::Stop {
            break;
        }
        match (field.id, field.field_type) {
            (Some(1), TType::String) => name = Some(protocol.read_string()?),
            (_, t) => protocol.skip(t)?,
        }
        protocol.read_field_end()?;
    }
    protocol.read_struct_end()?;
    if protocol.remaining() > 0 {
        return Err(malformed(format!(
            "{} bytes after the TDatabaseSchema",
            protocol.remaining()
        )));
    }
    name.ok_or_else(|| malformed("a TDatabaseSchema without its name"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.put_i32(s.len() as i32);
        out.extend_from_slice(s.as_bytes());
    }

    /// `DatabaseSchemaPlan`: the type, then a binary-protocol TDatabaseSchema {1: name, 2: ttl,
    /// 6: isTableModel} written field by field.
    fn create_database(name: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i16(200);
        b.put_u8(0x0B);
        b.put_i16(1);
        string(&mut b, name);
        b.put_u8(0x0A);
        b.put_i16(2);
        b.put_i64(3_600_000);
        b.put_u8(0x02);
        b.put_i16(6);
        b.put_u8(0);
        b.put_u8(0); // stop
        b
    }

    #[test]
    fn database_and_ttl_plans_are_read() {
        assert_eq!(
            decode_config_plan(&create_database("root.sg")).unwrap(),
            ConfigPlan::CreateDatabase {
                name: "root.sg".into()
            }
        );
        let mut delete = Vec::new();
        delete.put_i16(206);
        string(&mut delete, "root.sg");
        assert_eq!(
            decode_config_plan(&delete).unwrap(),
            ConfigPlan::DeleteDatabase {
                name: "root.sg".into()
            }
        );
        for with_flag in [false, true] {
            let mut ttl = Vec::new();
            ttl.put_i16(201);
            ttl.put_i32(3);
            for n in ["root", "sg", "**"] {
                string(&mut ttl, n);
            }
            ttl.put_i64(86_400_000);
            if with_flag {
                ttl.put_u8(0);
            }
            assert_eq!(
                decode_config_plan(&ttl).unwrap(),
                ConfigPlan::SetTtl(TtlRule {
                    pattern: "root.sg.**".into(),
                    ttl_ms: 86_400_000,
                    database: false,
                })
            );
        }
    }

    #[test]
    fn a_pipe_set_ttl_plan_carries_its_set_ttl_plans_with_or_without_the_flag() {
        for with_flag in [false, true] {
            let mut b = Vec::new();
            b.put_i16(1705);
            b.put_i32(2);
            for (nodes, ttl) in [(["root", "a", "**"], 1000i64), (["root", "b", "d"], 2000)] {
                b.put_i16(201);
                b.put_i32(3);
                for n in nodes {
                    string(&mut b, n);
                }
                b.put_i64(ttl);
                if with_flag {
                    b.put_u8(1);
                }
            }
            let rule = |pattern: &str, ttl_ms| TtlRule {
                pattern: pattern.into(),
                ttl_ms,
                database: with_flag,
            };
            assert_eq!(
                decode_config_plan(&b).unwrap(),
                ConfigPlan::SetTtls(vec![rule("root.a.**", 1000), rule("root.b.d", 2000)])
            );
            for cut in 0..b.len() {
                assert!(decode_config_plan(&b[..cut]).is_err(), "cut {cut}");
            }
        }
    }

    #[test]
    fn truncations_and_other_plans_are_errors() {
        let body = create_database("root.sg");
        for cut in 0..body.len() {
            assert!(decode_config_plan(&body[..cut]).is_err(), "cut {cut}");
        }
        let mut padded = body.clone();
        padded.push(0);
        assert!(decode_config_plan(&padded).is_err());
        let mut author = Vec::new();
        author.put_i16(621);
        let err = decode_config_plan(&author).unwrap_err();
        assert!(matches!(err, ProtoError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("authority"));
    }
}
