//! Applying the schema-region snapshot an IoTDB sender seals (`TRANSFER_SCHEMA_SNAPSHOT_SEAL`, 102)
//! after its pieces (101) arrived through the connection's [`FileReceiver`]: the schema *history* of
//! one database, as IoTDB's `IoTDBDataNodeReceiver.loadSchemaSnapShot` (apache/iotdb datanode,
//! `…/pipe/receiver/protocol/thrift/`) applies it — the database created if need be, then per device
//! its template activation and its series (an aligned device's together), each kept only if the
//! seal's `Type` list names its statement (19 series, 22 aligned series, 53 activation) and the seal's
//! path pattern selects it (`PipeStatementTreePatternParseVisitor`: a series by its full path, an
//! activation when the pattern overlaps `device.*`); a snapshot of a database the pattern cannot
//! touch, or of the table model when the pipe does not capture it, applies nothing.
//!
//! Every change is a peer's schema change ([`Engine::apply_unversioned_schema`]: versioned on arrival
//! from the storage clock, with the pipe's origin), so a newer change here is never undone by it.
//! The tag log and the device-attribute file are received (the seal checks their lengths) but not
//! read: Duet keeps no tags, attributes or aliases.
//!
//! **Invariant:** the MTree file is parsed to its end before anything is applied, so a corrupt,
//! truncated or unsupported snapshot (views, table-model devices) is refused whole with a status
//! naming why and changes nothing. What cannot be applied for a reason of this instance's own — a
//! series that exists here with another type, an activation under no template set here — is left
//! out, the rest applied, and the answer is 1810 naming what was left out, as IoTDB's receiver
//! applies "as many as possible" and reports the failures.

use std::path::PathBuf;

use duet_engine::schema_sync::{SchemaChange, SeriesSpec};
use duet_engine::{paths, Engine, EngineError};
use duet_parser::PathNode;
use duet_proto::pipe_body::FileSeal;
use duet_proto::schema_snapshot::{
    self, snapshot_type, MTreeSnapshot, SchemaSnapshotSeal, SnapshotDevice,
};
use duet_proto::status::{self, StatusCode};
use duet_proto::t::TPipeTransferResp;

use crate::file_receiver::FileReceiver;
use crate::handshake::pipe_status;
use crate::receiver::Applying;

/// What is left out and named in the answer, at most.
const NAMED_LEFT_OUT: usize = 10;

/// Handles a decoded snapshot seal: checks the received files against it and applies the snapshot
/// (the receiver empties the connection's directory after it, whatever the outcome).
pub async fn seal(
    files: &mut FileReceiver,
    applying: &Applying<'_>,
    seal: FileSeal,
    params: SchemaSnapshotSeal,
) -> TPipeTransferResp {
    // The files by position: the MTree snapshot, then the optional tag log and device attributes.
    let Some(Some(mtree_name)) = seal.files.first().map(|(name, _)| name.clone()) else {
        return pipe_status(
            StatusCode::PipeTransferFileError,
            "The schema snapshot seal names no MTree snapshot file.",
        );
    };
    if let Err(resp) = files.seal(seal).await {
        return resp;
    }
    if mtree_name.ends_with(".pst.snapshot") {
        // `schema_file.pst.snapshot` (`SchemaConstant`): a sender whose schema engine is PBTree.
        return pipe_status(
            StatusCode::PipeTransferExecuteStatementError,
            format!(
                "The schema snapshot {mtree_name} of {} is a PBTree schema file; Duet reads the \
                 memory schema engine's MTree snapshot only.",
                params.database
            ),
        );
    }
    let mtree = files.dir().join(&mtree_name);
    apply(applying, &params, mtree).await
}

/// Why a seal's database needs nothing applied, if it does not.
fn nothing_to_apply(params: &SchemaSnapshotSeal, pattern: &[PathNode]) -> Option<&'static str> {
    let tree_database = params.database == "root" || params.database.starts_with("root.");
    if !tree_database || !params.tree_captured {
        return Some("not of the tree model this pipe captures");
    }
    if !paths::matches_prefix_of(pattern, &paths::split(&params.database)) {
        return Some("outside the pipe's path pattern");
    }
    None
}

async fn apply(
    applying: &Applying<'_>,
    params: &SchemaSnapshotSeal,
    mtree: PathBuf,
) -> TPipeTransferResp {
    let database = &params.database;
    let tree_database = database == "root" || database.starts_with("root.");
    if !tree_database && params.table_captured {
        return pipe_status(
            StatusCode::PipeTransferExecuteStatementError,
            format!(
                "The schema snapshot of table-model database {database} is refused: Duet takes \
                 the tree model only."
            ),
        );
    }
    let pattern_text = params.path_pattern.as_deref().unwrap_or("root.**");
    let Some(pattern) = paths::parse_pattern(pattern_text) else {
        return pipe_status(
            StatusCode::PipeTransferExecuteStatementError,
            format!("The schema snapshot seal's path pattern {pattern_text:?} is not a legal path pattern."),
        );
    };
    if let Some(why) = nothing_to_apply(params, &pattern) {
        tracing::debug!(database = %database, "a schema snapshot applies nothing: {why}");
        return TPipeTransferResp::new(status::success(), None);
    }
    let parsed = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&mtree).map_err(|e| format!("it cannot be read: {e}"))?;
        schema_snapshot::parse_mtree_snapshot(&bytes).map_err(|e| e.to_string())
    })
    .await;
    let snapshot = match parsed {
        Ok(Ok(snapshot)) => snapshot,
        Ok(Err(why)) => {
            return pipe_status(
                StatusCode::PipeTransferExecuteStatementError,
                format!(
                "The schema snapshot of {database} is refused and nothing of it was applied: {why}"
            ),
            )
        }
        Err(e) => {
            return pipe_status(
                StatusCode::InternalServerError,
                format!("Reading the schema snapshot of {database} failed: {e}"),
            )
        }
    };
    let (changes, left_out) = match plan(applying.engine, params, &pattern, &snapshot) {
        Ok(planned) => planned,
        Err(e) => return refused(e),
    };
    // What the handshake user may not apply is left out, the rest applied, and the refusal
    // answered (IoTDB's receiver applies such a snapshot statement by statement, each checked).
    let resp = apply_permitted(applying, changes).await;
    if resp.status.code != status::success().code || left_out.is_empty() {
        return resp;
    }
    tracing::warn!(
        database = %database,
        "a schema snapshot was applied without {} of its objects: {}",
        left_out.len(),
        left_out.join("; ")
    );
    let more = left_out.len().saturating_sub(NAMED_LEFT_OUT);
    let mut message = format!(
        "The schema snapshot of {database} was applied except {} object(s): {}",
        left_out.len(),
        left_out
            .iter()
            .take(NAMED_LEFT_OUT)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    );
    if more > 0 {
        message.push_str(&format!("; and {more} more"));
    }
    pipe_status(StatusCode::PipeReceiverUserConflict, message)
}

/// The full path of a snapshot device.
fn device_path(database: &str, device: &SnapshotDevice) -> String {
    if device.nodes.is_empty() {
        database.to_string()
    } else {
        format!("{database}.{}", device.nodes.join("."))
    }
}

/// Whether `pattern` matches some series `device.X` (IoTDB's `matchDevice`: the pattern overlaps
/// `device.*`). Trying, as X, each name the pattern spells, each glob's fixed text and a name no
/// pattern spells is enough: whatever pattern node takes X, one of them is taken too.
fn overlaps_device_children(pattern: &[PathNode], device: &[String]) -> bool {
    let mut candidates: Vec<String> = pattern
        .iter()
        .filter_map(|node| match node {
            PathNode::Name(n) => Some(n.clone()),
            PathNode::Glob(g) => Some(g.replace('*', "")),
            PathNode::One | PathNode::Many => None,
        })
        .collect();
    candidates.push("\u{0}".to_string());
    candidates.into_iter().any(|x| {
        let mut nodes = device.to_vec();
        nodes.push(x);
        paths::matches(pattern, &nodes)
    })
}

/// The changes a snapshot makes here, in IoTDB's order, and what is left out (with why).
fn plan(
    engine: &Engine,
    params: &SchemaSnapshotSeal,
    pattern: &[PathNode],
    snapshot: &MTreeSnapshot,
) -> Result<(Vec<SchemaChange>, Vec<String>), EngineError> {
    let database = &params.database;
    let mut changes = vec![SchemaChange::CreateDatabase {
        path: database.clone(),
    }];
    let mut left_out = Vec::new();
    let set_paths = template_set_paths(engine)?;
    for device in &snapshot.devices {
        let path = device_path(database, device);
        let nodes = paths::split(&path);
        if device.template_activated
            && params.types.contains(&snapshot_type::ACTIVATE_TEMPLATE)
            && overlaps_device_children(pattern, &nodes)
        {
            let set_here = set_paths
                .iter()
                .any(|set| nodes.starts_with(set.as_slice()));
            if set_here {
                changes.push(SchemaChange::ActivateTemplate {
                    device: path.clone(),
                    made_on: None,
                });
            } else {
                left_out.push(format!(
                    "the template activation of {path} (no template is set on or above it here)"
                ));
            }
        }
        let aligned = device.aligned == Some(true);
        let wanted = if aligned {
            snapshot_type::CREATE_ALIGNED_TIME_SERIES
        } else {
            snapshot_type::CREATE_TIME_SERIES
        };
        if !params.types.contains(&wanted) {
            continue;
        }
        let mut series = Vec::new();
        for s in &device.series {
            let mut full = nodes.clone();
            full.push(s.measurement.clone());
            if !paths::matches(pattern, &full) {
                continue;
            }
            match engine.series_data_type(&path, &s.measurement)? {
                Some(here) if here != s.data_type => {
                    left_out.push(format!(
                        "{path}.{} ({} in the snapshot, {} here)",
                        s.measurement,
                        s.data_type.name(),
                        here.name()
                    ));
                    continue;
                }
                _ => {}
            }
            series.push(SeriesSpec {
                measurement: s.measurement.clone(),
                data_type: s.data_type.name().to_string(),
                encoding: s.encoding.clone(),
                compressor: s.compressor.clone(),
            });
        }
        if !series.is_empty() {
            changes.push(SchemaChange::CreateSeries {
                device: path,
                aligned,
                series,
            });
        }
    }
    Ok((changes, left_out))
}

/// Every path a template is set on here, as nodes.
fn template_set_paths(engine: &Engine) -> Result<Vec<Vec<String>>, EngineError> {
    let mut set = Vec::new();
    for name in engine.template_names()? {
        for path in engine.paths_set_template(&name)? {
            set.push(paths::split(&path));
        }
    }
    Ok(set)
}

/// Applies the schema changes the handshake user may apply, in order; the answer is the refusal
/// of the others, if any (IoTDB's receiver checks each plan of a snapshot and applies the ones it
/// may), or of the first change that fails.
pub(crate) async fn apply_permitted(
    applying: &Applying<'_>,
    changes: Vec<SchemaChange>,
) -> TPipeTransferResp {
    let (changes, refusal) = crate::receiver::permitted(applying.authority, changes);
    for change in changes {
        if let Err(e) = applying
            .engine
            .apply_unversioned_schema(applying.origin.clone(), change)
            .await
        {
            return refused(e);
        }
    }
    refusal.unwrap_or_else(|| TPipeTransferResp::new(status::success(), None))
}

/// The status a sender sees when a change could not be applied (as the receiver's `refused`).
fn refused(e: EngineError) -> TPipeTransferResp {
    pipe_status(
        crate::receiver::refusal_code(&e),
        format!("Failed to apply a schema snapshot: {e}"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Vec<PathNode> {
        paths::parse_pattern(text).unwrap()
    }

    fn nodes(path: &str) -> Vec<String> {
        paths::split(path)
    }

    #[test]
    fn a_pattern_overlaps_a_devices_children_as_iotdbs_match_device() {
        let device = nodes("root.sg.d1");
        for yes in [
            "root.**",
            "root.sg.d1.*",
            "root.sg.d1.s1",
            "root.sg.*.s*",
            "root.*.d1.**",
            "root.sg.d1.t*",
        ] {
            assert!(overlaps_device_children(&pattern(yes), &device), "{yes}");
        }
        for no in [
            "root.sg.d1",
            "root.sg.d2.*",
            "root.sg.d1.*.*",
            "root.other.**",
        ] {
            assert!(!overlaps_device_children(&pattern(no), &device), "{no}");
        }
    }
}
