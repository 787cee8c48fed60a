//! The device-template RPCs (`createSchemaTemplate` … `createTimeseriesUsingSchemaTemplate`) as calls
//! of the engine's template methods, the same ones the SQL statements use, so both answer the same
//! status codes.
//!
//! As IoTDB's `ClientRPCServiceImpl`: template names lose their back quotes, paths are parsed as
//! `PartialPath` would, and `createSchemaTemplate` takes its name from the request (the name inside the
//! serialized bytes is skipped) and its alignment from the last aligned flag read. Duet's templates
//! are flat, as IoTDB 2.0's are: a measurement under an inner node (a serialized prefix, or a dotted
//! name in `appendSchemaTemplate`) is refused. Where IoTDB 2.0 refuses (`appendSchemaTemplate`,
//! `pruneSchemaTemplate`, and the `COUNT_MEASUREMENTS`, `IS_MEASUREMENT` and `PATH_EXIST` queries),
//! Duet serves them, because the engine's template operations make that direct
//! (`docs/client-rpc.md`).

use duet_engine::template::TemplateMeasurementSpec;
use duet_engine::{paths, Engine, EngineError};
use duet_parser::PathNode;
use duet_proto::schema_template;
use duet_proto::status::{self, StatusCode};
use duet_proto::t;
use duet_proto::types::DataType;

use crate::writes::{compressor_name, encoding_name};

/// IoTDB's `TemplateQueryType`, in wire order.
const COUNT_MEASUREMENTS: i32 = 0;
const IS_MEASUREMENT: i32 = 1;
const PATH_EXIST: i32 = 2;
const SHOW_MEASUREMENTS: i32 = 3;
const SHOW_TEMPLATES: i32 = 4;
const SHOW_SET_TEMPLATES: i32 = 5;
const SHOW_USING_TEMPLATES: i32 = 6;

fn engine_status(e: &EngineError) -> t::TSStatus {
    crate::status_codes::failure(e)
}

fn result(r: Result<(), EngineError>) -> t::TSStatus {
    match r {
        Ok(()) => status::success(),
        Err(e) => engine_status(&e),
    }
}

/// IoTDB's `ASTVisitor.parseIdentifier`: `` `a``b` `` is the name ``a`b``; anything else is as sent.
fn template_name(name: &str) -> String {
    match name.strip_prefix('`').and_then(|n| n.strip_suffix('`')) {
        Some(inner) if name.len() >= 2 => inner.replace("``", "`"),
        _ => name.to_string(),
    }
}

/// A concrete path as the engine keys it (canonical quoting); illegal ones are 509.
fn concrete_path(text: &str) -> Result<String, t::TSStatus> {
    paths::parse_concrete(text)
        .map(|nodes| paths::join(&nodes))
        .map_err(|why| {
            status::failure(
                StatusCode::IllegalPath,
                format!("{text} is not a legal path, because {why}"),
            )
        })
}

/// One measurement of a template definition from wire codes: a single node, a known type, an
/// encoding and a compressor IoTDB names (else IoTDB's `deserialize` fails: 301).
fn spec(
    name: &str,
    data_type: i32,
    encoding: i32,
    compressor: i32,
) -> Result<TemplateMeasurementSpec, t::TSStatus> {
    if name.is_empty() || name.contains('.') || name.contains('*') {
        return Err(status::failure(
            StatusCode::IllegalPath,
            format!(
                "{name} is not a legal measurement of a device template: templates are flat (IoTDB 2.0's have no inner nodes), so a measurement is one plain node"
            ),
        ));
    }
    let unknown = |what: &str, code: i32| {
        status::failure(
            StatusCode::ExecuteStatementError,
            format!("invalid input: unknown {what} code {code} for measurement {name}"),
        )
    };
    let data_type =
        DataType::from_code(data_type).ok_or_else(|| unknown("data type", data_type))?;
    let encoding = encoding_name(encoding).ok_or_else(|| unknown("encoding", encoding))?;
    let compressor =
        compressor_name(compressor).ok_or_else(|| unknown("compressor", compressor))?;
    Ok((name.to_string(), data_type, encoding, compressor))
}

pub async fn create(engine: &Engine, r: &t::TSCreateSchemaTemplateReq) -> t::TSStatus {
    let name = template_name(&r.name);
    if name.is_empty() {
        return status::failure(StatusCode::IllegalParameter, "a template name is required");
    }
    let template = match schema_template::decode(&r.serialized_template) {
        Ok(t) => t,
        Err(e) => {
            return status::failure(
                StatusCode::ExecuteStatementError,
                format!("the serialized template of {name} cannot be read: {e}"),
            )
        }
    };
    // IoTDB's reading: a prefix once seen aligned must stay aligned, and the template's alignment is
    // the last flag read (the header's when there are no measurements).
    let mut aligned = template.aligned;
    let mut aligned_prefixes: Vec<String> = Vec::new();
    if aligned {
        aligned_prefixes.push(String::new());
    }
    let mut specs = Vec::with_capacity(template.measurements.len());
    for m in &template.measurements {
        let Some(measurement) = &m.name else {
            return status::failure(
                StatusCode::MetadataError,
                "The name of a measurement in schema template shall not be null.",
            );
        };
        let prefix = m.prefix.clone().unwrap_or_default();
        if aligned_prefixes.contains(&prefix) && !m.aligned {
            return status::failure(
                StatusCode::MetadataError,
                format!("Align designation incorrect at: {prefix}"),
            );
        }
        if m.aligned && !aligned_prefixes.contains(&prefix) {
            aligned_prefixes.push(prefix.clone());
        }
        aligned = m.aligned;
        let full = if prefix.is_empty() {
            measurement.clone()
        } else {
            format!("{prefix}.{measurement}")
        };
        match spec(
            &full,
            i32::from(m.data_type),
            i32::from(m.encoding),
            i32::from(m.compressor),
        ) {
            Ok(s) => specs.push(s),
            Err(status) => return status,
        }
    }
    result(engine.create_template(&name, aligned, &specs).await)
}

pub async fn append(engine: &Engine, r: &t::TSAppendSchemaTemplateReq) -> t::TSStatus {
    let name = template_name(&r.name);
    let n = r.measurements.len();
    if r.data_types.len() != n || r.encodings.len() != n || r.compressors.len() != n {
        return status::failure(
            StatusCode::IllegalParameter,
            "appendSchemaTemplate: measurements, data types, encodings and compressors differ in length",
        );
    }
    match engine.template(&name) {
        Ok(Some(template)) if template.aligned != r.is_aligned => {
            return status::failure(
                StatusCode::MetadataError,
                format!(
                    "Align designation incorrect at: template {name} is {}aligned, and its measurements are added with its alignment",
                    if template.aligned { "" } else { "not " }
                ),
            );
        }
        Ok(_) => {}
        Err(e) => return engine_status(&e),
    }
    let mut specs = Vec::with_capacity(n);
    for i in 0..n {
        match spec(
            &r.measurements[i],
            r.data_types[i],
            r.encodings[i],
            r.compressors[i],
        ) {
            Ok(s) => specs.push(s),
            Err(status) => return status,
        }
    }
    result(engine.append_template(&name, &specs).await)
}

pub async fn prune(engine: &Engine, r: &t::TSPruneSchemaTemplateReq) -> t::TSStatus {
    result(
        engine
            .prune_template(&template_name(&r.name), &r.path)
            .await,
    )
}

pub async fn set(engine: &Engine, r: &t::TSSetSchemaTemplateReq) -> t::TSStatus {
    match concrete_path(&r.prefix_path) {
        Ok(path) => result(
            engine
                .set_template(&template_name(&r.template_name), &path)
                .await,
        ),
        Err(status) => status,
    }
}

pub async fn unset(engine: &Engine, r: &t::TSUnsetSchemaTemplateReq) -> t::TSStatus {
    match concrete_path(&r.prefix_path) {
        Ok(path) => result(
            engine
                .unset_template(&template_name(&r.template_name), &path)
                .await,
        ),
        Err(status) => status,
    }
}

pub async fn drop(engine: &Engine, r: &t::TSDropSchemaTemplateReq) -> t::TSStatus {
    result(engine.drop_template(&template_name(&r.template_name)).await)
}

/// Activates the template on each device in order (every path is checked first); the first failure
/// is the answer, and the devices before it stay activated.
pub async fn activate(
    engine: &Engine,
    r: &t::TCreateTimeseriesUsingSchemaTemplateReq,
) -> t::TSStatus {
    let mut devices = Vec::with_capacity(r.device_path_list.len());
    for text in &r.device_path_list {
        match concrete_path(text) {
            Ok(path) => devices.push(path),
            Err(status) => return status,
        }
    }
    for device in &devices {
        if let Err(e) = engine.activate_template(device).await {
            return engine_status(&e);
        }
    }
    status::success()
}

/// A `querySchemaTemplate` answer: `count` for COUNT_MEASUREMENTS, `result` for IS_MEASUREMENT and
/// PATH_EXIST, `measurements` for the SHOW queries (the first column of the SQL form's result, as
/// IoTDB fills it); `queryType` echoes the request's.
pub fn query(engine: &Engine, r: &t::TSQueryTemplateReq) -> t::TSQueryTemplateResp {
    let mut resp = t::TSQueryTemplateResp::new(status::success(), r.query_type, None, None, None);
    let name = if r.name.is_empty() || r.name == "*" {
        r.name.clone()
    } else {
        template_name(&r.name)
    };
    let answer: Result<(), EngineError> = (|| {
        match r.query_type {
            COUNT_MEASUREMENTS => {
                let n = engine.template_nodes(&name)?.len();
                resp.count = Some(i32::try_from(n).unwrap_or(i32::MAX));
            }
            IS_MEASUREMENT | PATH_EXIST => {
                // A flat template's only paths are its measurements.
                let path = r.measurement.as_deref().unwrap_or_default();
                resp.result = Some(engine.template_nodes(&name)?.iter().any(|(m, _)| m == path));
            }
            SHOW_MEASUREMENTS => {
                // As IoTDB 2.0, every measurement: the pattern (`measurement`) is not applied.
                resp.measurements = Some(
                    engine
                        .template_nodes(&name)?
                        .into_iter()
                        .map(|(m, _)| m)
                        .collect(),
                );
            }
            SHOW_TEMPLATES => resp.measurements = Some(engine.template_names()?),
            SHOW_SET_TEMPLATES => resp.measurements = Some(engine.paths_set_template(&name)?),
            SHOW_USING_TEMPLATES => {
                let everything = [PathNode::Name("root".into()), PathNode::Many];
                resp.measurements = Some(engine.paths_using_template(&name, &everything)?);
            }
            _ => {}
        }
        Ok(())
    })();
    if !(COUNT_MEASUREMENTS..=SHOW_USING_TEMPLATES).contains(&r.query_type) {
        resp.status = status::failure(
            StatusCode::ExecuteStatementError,
            format!(
                "querySchemaTemplate: unknown query type {} (0 COUNT_MEASUREMENTS … 6 SHOW_USING_TEMPLATES)",
                r.query_type
            ),
        );
    } else if let Err(e) = answer {
        resp.status = engine_status(&e);
    }
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn template_names_lose_their_back_quotes_as_in_iotdb() {
        assert_eq!(template_name("t1"), "t1");
        assert_eq!(template_name("`t.1`"), "t.1");
        assert_eq!(template_name("`a``b`"), "a`b");
        assert_eq!(template_name("`"), "`");
    }

    #[test]
    fn specs_refuse_inner_nodes_and_unknown_codes() {
        assert_eq!(spec("GPS.x", 3, 2, 1).unwrap_err().code, 509);
        assert_eq!(spec("s1", 6, 0, 0).unwrap_err().code, 301);
        assert_eq!(spec("s1", 2, 99, 0).unwrap_err().code, 301);
        assert_eq!(spec("s1", 2, 2, -1).unwrap_err().code, 301);
        let (m, t, e, c) = spec("s1", 2, 2, 1).unwrap();
        assert_eq!(
            (m.as_str(), t, e.as_str(), c.as_str()),
            ("s1", DataType::Int64, "RLE", "SNAPPY")
        );
    }
}
