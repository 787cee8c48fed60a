//! Loading the TsFiles an IoTDB sender sealed (with their mods files) into this instance, as IoTDB's
//! receiver `LOAD`s them: every point of every chunk is written through the engine with the pipe's
//! origin (so a double-living pipe here does not send it back), minus the points the mods file
//! deletes.
//!
//! **Invariant:** a file is applied whole or not at all as far as its content goes: it is read once
//! to the end first (every chunk decoded, so a corrupt or truncated file, a table-model file, an
//! encoding the reader does not have, or a series whose type differs from the one it has here is
//! refused with a status naming it before anything is written), then read again to write. Memory
//! follows one chunk, not the file.

use std::path::{Path, PathBuf};

use duet_engine::paths;
use duet_engine::write::{DeviceWrite, WriteColumn};
use duet_engine::Engine;
use duet_parser::PathNode;
use duet_proto::status::{self, StatusCode};
use duet_proto::t::TPipeTransferResp;
use duet_proto::types::{Column, ColumnValues, DataType};
use duet_storage::Origin;
use duet_tsfile::{Deletion, SeriesChunk, TsFileReader};

use crate::file_receiver::{file_error, SealedFiles};
use crate::handshake::pipe_status;
use crate::receiver::{Applied, Applying};

/// Points gathered before one engine write.
const POINTS_PER_WRITE: usize = 64 * 1024;

/// A deletion of a mods file, compiled.
struct CompiledDeletion {
    pattern: Vec<PathNode>,
    start: i64,
    end: i64,
}

/// Loads sealed files once the handshake user may write every series of the file (creating the
/// ones that do not exist here); the answer the sender gets.
pub async fn load(applying: &Applying<'_>, sealed: &SealedFiles) -> TPipeTransferResp {
    let Some(tsfile) = sealed
        .files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "tsfile"))
        .cloned()
    else {
        return file_error(format!(
            "the seal names no .tsfile among {}",
            names(&sealed.files)
        ));
    };
    let mods: Vec<PathBuf> = sealed
        .files
        .iter()
        .filter(|p| **p != tsfile)
        .cloned()
        .collect();
    let checked = {
        let (tsfile, mods) = (tsfile.clone(), mods.clone());
        tokio::task::spawn_blocking(move || check(&tsfile, &mods)).await
    };
    let checked = match checked {
        Ok(Ok(checked)) => checked,
        Ok(Err(message)) => return file_error(message),
        Err(e) => return file_error(format!("loading {} failed: {e}", tsfile.display())),
    };
    // A series that exists here with another type would fail midway: refused before any write.
    for ((device, measurement), t) in &checked.series {
        match applying.engine.series_data_type(device, measurement) {
            Ok(Some(here)) if here != *t => {
                return pipe_status(
                    StatusCode::PipeReceiverUserConflict,
                    format!(
                        "{} cannot be loaded: {device}.{measurement} is {t} in the file and {here} here",
                        file_name(&tsfile)
                    ),
                )
            }
            Ok(_) => {}
            Err(e) => return file_error(format!("loading {} failed: {e}", file_name(&tsfile))),
        }
    }
    // A file is one write as IoTDB's LOAD is one statement: refused whole for any series the
    // user may not write.
    let mut by_device: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (device, measurement) in checked.series.keys() {
        by_device
            .entry(device.as_str())
            .or_default()
            .push(measurement.clone());
    }
    for (device, measurements) in &by_device {
        if let Err(status) = applying.authority.check(Applied::Points {
            device,
            measurements,
        }) {
            return TPipeTransferResp::new(status, None);
        }
    }
    let deletions = checked.deletions;
    match write(applying.engine, applying.origin.clone(), &tsfile, deletions).await {
        Ok(()) => TPipeTransferResp::new(status::success(), None),
        Err(resp) => resp,
    }
}

fn names(files: &[PathBuf]) -> String {
    files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What the first pass learns: the mods files' deletions, and every series of the file with its type.
struct Checked {
    deletions: Vec<CompiledDeletion>,
    series: std::collections::BTreeMap<(String, String), DataType>,
}

/// The first pass: reads the mods files and the whole TsFile, refusing what cannot be loaded.
fn check(tsfile: &Path, mods: &[PathBuf]) -> Result<Checked, String> {
    let mut deletions = Vec::new();
    for m in mods {
        let read = duet_tsfile::read_mods_file(m)
            .map_err(|e| format!("{} is not a readable mods file: {e}", file_name(m)))?;
        for Deletion {
            path_pattern,
            start_time,
            end_time,
        } in read
        {
            let pattern = paths::parse_pattern(&path_pattern).ok_or_else(|| {
                format!(
                    "{}: deletion path {path_pattern} is not a legal path pattern",
                    file_name(m)
                )
            })?;
            deletions.push(CompiledDeletion {
                pattern,
                start: start_time,
                end: end_time,
            });
        }
    }
    let name = file_name(tsfile);
    let mut reader =
        TsFileReader::open(tsfile).map_err(|e| format!("{name} is not a valid TsFile: {e}"))?;
    let mut series = std::collections::BTreeMap::new();
    for chunk in reader.chunks() {
        let chunk = chunk.map_err(|e| format!("{name} cannot be loaded: {e}"))?;
        let device =
            tree_device(&chunk).map_err(|why| format!("{name} cannot be loaded: {why}"))?;
        series.insert((device, chunk.measurement.clone()), chunk.data_type);
    }
    Ok(Checked { deletions, series })
}

fn tree_device(chunk: &SeriesChunk) -> Result<String, String> {
    let device = chunk.device.path();
    if device == "root" || device.starts_with("root.") {
        Ok(device)
    } else {
        Err(format!(
            "device {device} is a table-model device; Duet takes the tree model only"
        ))
    }
}

/// The second pass: reads the file again on a blocking thread, hands batches of device writes to
/// this task, which writes them through the engine.
async fn write(
    engine: &Engine,
    origin: Origin,
    tsfile: &Path,
    deletions: Vec<CompiledDeletion>,
) -> Result<(), TPipeTransferResp> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<DeviceWrite>, String>>(2);
    let path = tsfile.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || {
        let name = file_name(&path);
        let mut reader = match TsFileReader::open(&path) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(format!("{name} is not a valid TsFile: {e}")));
                return;
            }
        };
        let mut batch = Vec::new();
        let mut points = 0;
        for chunk in reader.chunks() {
            let write = chunk
                .map_err(|e| format!("{name} cannot be loaded: {e}"))
                .and_then(|c| device_write(&c, &deletions));
            match write {
                Ok(Some(w)) => {
                    points += w.times.len();
                    batch.push(w);
                }
                Ok(None) => {}
                Err(message) => {
                    let _ = tx.blocking_send(Err(message));
                    return;
                }
            }
            if points >= POINTS_PER_WRITE {
                if tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
                    return;
                }
                points = 0;
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Ok(batch));
        }
    });
    while let Some(batch) = rx.recv().await {
        let writes = batch.map_err(file_error)?;
        let outcome = engine
            .write_from(origin.clone(), writes)
            .await
            .map_err(|e| file_error(format!("loading {} failed: {e}", file_name(tsfile))))?;
        if let Some(e) = outcome.results.into_iter().find_map(Result::err) {
            return Err(pipe_status(
                StatusCode::PipeReceiverUserConflict,
                format!("loading {} failed: {e}", file_name(tsfile)),
            ));
        }
    }
    reader
        .await
        .map_err(|e| file_error(format!("loading {} failed: {e}", file_name(tsfile))))
}

/// One chunk as a device write, without the points a deletion covers (`None` when none is left).
fn device_write(
    chunk: &SeriesChunk,
    deletions: &[CompiledDeletion],
) -> Result<Option<DeviceWrite>, String> {
    let device = tree_device(chunk)?;
    let data_type = chunk.data_type;
    let mut series = paths::split(&device);
    series.push(chunk.measurement.clone());
    let covering: Vec<&CompiledDeletion> = deletions
        .iter()
        .filter(|d| paths::matches(&d.pattern, &series))
        .collect();
    let keep: Vec<bool> = chunk
        .times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            chunk.values.get(i).is_some() && !covering.iter().any(|d| d.start <= *t && *t <= d.end)
        })
        .collect();
    if !keep.iter().any(|k| *k) {
        return Ok(None);
    }
    let times: Vec<i64> = chunk
        .times
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(t, _)| *t)
        .collect();
    let values = column_values(&chunk.values, &keep);
    Ok(Some(DeviceWrite {
        device,
        aligned: chunk.aligned,
        measurements: vec![chunk.measurement.clone()],
        columns: vec![WriteColumn::Typed(Column {
            data_type,
            nulls: None,
            values,
        })],
        times,
    }))
}

/// The kept (non-null) values of a TsFile column in Duet's column form.
fn column_values(column: &duet_tsfile::Column, keep: &[bool]) -> ColumnValues {
    fn kept<T: Clone>(values: &[Option<T>], keep: &[bool], zero: T) -> Vec<T> {
        values
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(v, _)| v.clone().unwrap_or_else(|| zero.clone()))
            .collect()
    }
    match column {
        duet_tsfile::Column::Boolean(v) => ColumnValues::Boolean(kept(v, keep, false)),
        duet_tsfile::Column::Int32(v) => ColumnValues::Int32(kept(v, keep, 0)),
        duet_tsfile::Column::Int64(v) => ColumnValues::Int64(kept(v, keep, 0)),
        duet_tsfile::Column::Float(v) => ColumnValues::Float(kept(v, keep, 0.0)),
        duet_tsfile::Column::Double(v) => ColumnValues::Double(kept(v, keep, 0.0)),
        duet_tsfile::Column::Binary(v) => ColumnValues::Binary(kept(v, keep, Vec::new())),
    }
}
