//! Loading the TsFiles an IoTDB sender sealed (with their mods files) into this instance: their points
//! are written through the engine with the pipe's origin, as IoTDB's receiver `LOAD`s them.
//!
//! Reading TsFile v4 needs the `duet-tsfile` reader, which is not in the workspace yet (issue 10): until
//! it is, a seal is answered with a clear error naming the sender setting that avoids TsFile transfer
//! (`'sink.format'='tablet'`), and nothing of the file is applied.

use duet_engine::Engine;
use duet_proto::status::StatusCode;
use duet_proto::t::TPipeTransferResp;
use duet_storage::Origin;

use crate::file_receiver::SealedFiles;
use crate::handshake::pipe_status;

/// Loads sealed files; the answer the sender gets.
pub async fn load(_engine: &Engine, _origin: Origin, sealed: &SealedFiles) -> TPipeTransferResp {
    let names: Vec<String> = sealed
        .files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    pipe_status(
        StatusCode::PipeTransferFileError,
        format!(
            "Duet does not load TsFiles yet ({}); set the sender's 'sink.format'='tablet' to transfer \
             history and flushed data as tablets",
            names.join(", ")
        ),
    )
}
