//! The receiving end of IoTDB's file transfer (pipe reference §6.8): a sender streams a TsFile (and
//! its mods file) in pieces (types 4 and 8) into one file at a time per connection, and a seal
//! (types 5 and 9) names the files and their lengths; only then are they loaded. Behaves as IoTDB's
//! `IoTDBFileReceiver` (apache/iotdb node-commons, revision 0092071): a piece whose start is not the
//! file's current length is answered `PIPE_TRANSFER_FILE_OFFSET_RESET` (1803) with that length, so the
//! sender seeks there (a file that is not a `.tsfile` — a mods file, whose content may change under one
//! name — is emptied first); a seal whose names or lengths do not match is refused with
//! `PIPE_TRANSFER_FILE_ERROR` (1804); after every seal, loaded or not, the connection's directory is
//! emptied, so a failed seal means the sender sends every piece again.
//!
//! **Invariant:** file names come from the sender and are used only after [`checked_name`]: one path
//! component of plain characters, never `..` or a separator, so nothing is written outside the
//! connection's directory; and the files of one transfer (a TsFile and its mods file) together never
//! exceed the configured cap (`pipe_receiver_max_file_bytes`): a piece past it is refused with 1804
//! and the transfer's files are removed, so a peer cannot fill the disk.

use std::path::{Path, PathBuf};

use duet_proto::pipe_body::{FilePiece, FileSeal};
use duet_proto::status::{self, StatusCode};
use duet_proto::t::TPipeTransferResp;
use tokio::io::AsyncWriteExt;

use crate::handshake::pipe_status;

/// The end offset a piece response carries when the piece failed (IoTDB's `ERROR_END_OFFSET`).
const ERROR_END_OFFSET: i64 = -1;

/// The file being written on one connection.
#[derive(Debug)]
struct Writing {
    name: String,
    path: PathBuf,
    file: tokio::fs::File,
    len: u64,
}

/// The default cap on one transfer's files (`pipe_receiver_max_file_bytes`): 8 GiB, well above
/// the TsFiles IoTDB writes (about 1 GiB) and far below a disk.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 8 << 30;

/// One connection's file transfer: its directory and the file being written.
#[derive(Debug)]
pub struct FileReceiver {
    dir: PathBuf,
    writing: Option<Writing>,
    /// Bytes of this transfer's files other than the one being written (a mods file kept for the
    /// seal).
    kept_bytes: u64,
    max_bytes: u64,
}

/// The files of a successful seal, in the order the seal named them (absent optional files left
/// out), ready to be loaded; and the seal's parameters.
#[derive(Debug)]
pub struct SealedFiles {
    pub files: Vec<PathBuf>,
    pub params: std::collections::BTreeMap<String, String>,
}

/// A piece response: the status and the file's length after the piece (`PipeTransferFilePieceResp`).
fn piece_response(status: duet_proto::t::TSStatus, end_offset: i64) -> TPipeTransferResp {
    TPipeTransferResp::new(status, Some(end_offset.to_be_bytes().to_vec()))
}

pub(crate) fn file_error(message: String) -> TPipeTransferResp {
    pipe_status(StatusCode::PipeTransferFileError, message)
}

/// A snapshot seal (`PipeTransferFileSealReqV2`) and its parameters as `parameters` reads them; a
/// file error naming the `kind` of snapshot when either is malformed.
pub fn decode_snapshot_seal<P>(
    body: &[u8],
    kind: &str,
    parameters: impl FnOnce(&std::collections::BTreeMap<String, String>) -> duet_proto::Result<P>,
) -> Result<(FileSeal, P), Box<TPipeTransferResp>> {
    let malformed = |e| Box::new(file_error(format!("Malformed {kind} snapshot seal: {e}")));
    let seal = duet_proto::pipe_body::decode_file_seal_v2(body).map_err(malformed)?;
    let params = parameters(&seal.params).map_err(malformed)?;
    Ok((seal, params))
}

/// The sender's file name if it is one plain path component: letters, digits, `-`, `_`, `.`, not
/// starting with a dot, at most 255 bytes.
pub fn checked_name(name: &str) -> Result<&str, String> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if plain {
        Ok(name)
    } else {
        Err(format!(
            "illegal file name {name:?}: a transferred file name must be one plain path component"
        ))
    }
}

impl FileReceiver {
    pub fn new(dir: PathBuf) -> FileReceiver {
        FileReceiver {
            dir,
            writing: None,
            kept_bytes: 0,
            max_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }

    /// The most bytes one transfer's files may hold together.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> FileReceiver {
        self.max_bytes = max_bytes;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes one piece. `single_file` (type 4) means a piece of a new name replaces the previous
    /// file; with mods (type 8) the previous file is kept for the seal.
    pub async fn piece(&mut self, piece: FilePiece, single_file: bool) -> TPipeTransferResp {
        match self.write_piece(piece, single_file).await {
            Ok(resp) => resp,
            Err(message) => piece_response(
                status::failure(
                    StatusCode::PipeTransferFileError,
                    format!("Failed to write file piece, because {message}"),
                ),
                ERROR_END_OFFSET,
            ),
        }
    }

    async fn write_piece(
        &mut self,
        piece: FilePiece,
        single_file: bool,
    ) -> Result<TPipeTransferResp, String> {
        let name = checked_name(&piece.file_name)?.to_string();
        let current = self.writing.as_ref().map(|w| w.name.as_str());
        if current != Some(name.as_str()) {
            if let Some(previous) = self.writing.take() {
                let _ = previous.file.sync_all().await;
                if single_file {
                    let _ = tokio::fs::remove_file(&previous.path).await;
                } else {
                    self.kept_bytes = self.kept_bytes.saturating_add(previous.len);
                }
            }
            tokio::fs::create_dir_all(&self.dir)
                .await
                .map_err(|e| format!("the receiver directory cannot be created: {e}"))?;
            let path = self.dir.join(&name);
            let file = tokio::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .await
                .map_err(|e| format!("{} cannot be opened: {e}", path.display()))?;
            let len = file.metadata().await.map_err(|e| e.to_string())?.len();
            self.writing = Some(Writing {
                name,
                path,
                file,
                len,
            });
        }
        let Some(writing) = self.writing.as_mut() else {
            return Err("no file is being written".into());
        };
        let at = u64::try_from(piece.start_offset).ok();
        if at != Some(writing.len) {
            if !writing.name.ends_with(".tsfile") {
                // A mods file's content can change under one name: its transfer starts over.
                writing.file.set_len(0).await.map_err(|e| e.to_string())?;
                writing.len = 0;
            }
            let len = i64::try_from(writing.len).unwrap_or(i64::MAX);
            return Ok(piece_response(
                status::failure(
                    StatusCode::PipeTransferFileOffsetReset,
                    format!(
                        "Request sender to reset file reader's offset from {} to {len}.",
                        piece.start_offset
                    ),
                ),
                len,
            ));
        }
        let held = self
            .kept_bytes
            .saturating_add(writing.len)
            .saturating_add(piece.bytes.len() as u64);
        if held > self.max_bytes {
            let message = format!(
                "the transferred files would take {held} bytes, more than \
                 pipe_receiver_max_file_bytes = {}; they are removed",
                self.max_bytes
            );
            tracing::warn!(dir = %self.dir.display(), "{message}");
            self.clear().await;
            return Err(message);
        }
        use tokio::io::AsyncSeekExt;
        writing
            .file
            .seek(std::io::SeekFrom::Start(writing.len))
            .await
            .map_err(|e| e.to_string())?;
        writing
            .file
            .write_all(&piece.bytes)
            .await
            .map_err(|e| e.to_string())?;
        writing.len += piece.bytes.len() as u64;
        Ok(piece_response(
            status::success(),
            i64::try_from(writing.len).unwrap_or(i64::MAX),
        ))
    }

    /// Checks a seal against what was received and makes the files durable. On an error the
    /// directory is emptied (the sender must send every piece again); on success the caller loads
    /// the files and then calls [`FileReceiver::clear`].
    pub async fn seal(&mut self, seal: FileSeal) -> Result<SealedFiles, TPipeTransferResp> {
        let result = self.check_seal(&seal).await;
        if result.is_err() {
            self.clear().await;
        }
        result.map(|files| SealedFiles {
            files,
            params: seal.params,
        })
    }

    async fn check_seal(&mut self, seal: &FileSeal) -> Result<Vec<PathBuf>, TPipeTransferResp> {
        let names: Vec<String> = seal.files.iter().filter_map(|(n, _)| n.clone()).collect();
        let Some(writing) = self.writing.take() else {
            return Err(file_error(format!(
                "Failed to seal file {names:?}, because writing file null is not available."
            )));
        };
        let mut files = Vec::with_capacity(seal.files.len());
        let last = seal.files.len().saturating_sub(1);
        for (i, (name, length)) in seal.files.iter().enumerate() {
            let Some(name) = name else { continue };
            let name = checked_name(name).map_err(file_error)?;
            let path = self.dir.join(name);
            let actual = if i == last {
                if name != writing.name {
                    return Err(file_error(format!(
                        "Failed to seal file {name}, because writing file is {}.",
                        writing.path.display()
                    )));
                }
                writing.len
            } else {
                match tokio::fs::metadata(&path).await {
                    Ok(m) => m.len(),
                    Err(_) => {
                        return Err(file_error(format!(
                            "Failed to seal file {name}, the file does not exist."
                        )))
                    }
                }
            };
            if u64::try_from(*length).ok() != Some(actual) {
                return Err(file_error(format!(
                    "Failed to seal file {name}, because the length of file is not correct. The \
                     original file has length {length}, but receiver file has length {actual}."
                )));
            }
            files.push(path);
        }
        if files.is_empty() {
            return Err(file_error("Failed to seal: the seal names no file.".into()));
        }
        writing
            .file
            .sync_all()
            .await
            .map_err(|e| file_error(format!("Failed to seal file {names:?} because {e}")))?;
        Ok(files)
    }

    /// Empties the connection's directory (after a seal, loaded or not).
    pub async fn clear(&mut self) {
        self.writing = None;
        self.kept_bytes = 0;
        let _ = tokio::fs::remove_dir_all(&self.dir).await;
    }
}

impl Drop for FileReceiver {
    fn drop(&mut self) {
        // A connection that ends mid-transfer leaves nothing behind.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn piece(name: &str, at: i64, bytes: &[u8]) -> FilePiece {
        FilePiece {
            file_name: name.into(),
            start_offset: at,
            bytes: bytes.to_vec(),
        }
    }

    fn end_offset(resp: &TPipeTransferResp) -> i64 {
        i64::from_be_bytes(resp.body.clone().unwrap().try_into().unwrap())
    }

    #[tokio::test]
    async fn pieces_append_a_wrong_offset_is_reset_and_a_seal_checks_names_and_lengths() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rx = FileReceiver::new(tmp.path().join("1"));
        let resp = rx.piece(piece("a.tsfile", 0, b"hello "), true).await;
        assert_eq!((resp.status.code, end_offset(&resp)), (200, 6));
        // A resent piece (the sender did not see the answer) is told where the file stands.
        let resp = rx.piece(piece("a.tsfile", 0, b"hello "), true).await;
        assert_eq!((resp.status.code, end_offset(&resp)), (1803, 6));
        let resp = rx.piece(piece("a.tsfile", 6, b"world"), true).await;
        assert_eq!((resp.status.code, end_offset(&resp)), (200, 11));
        // A wrong length is refused and everything must be sent again.
        let err = rx
            .seal(FileSeal {
                files: vec![(Some("a.tsfile".into()), 12)],
                ..FileSeal::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.status.code, 1804);
        assert!(!rx.dir().exists());
        let resp = rx.piece(piece("a.tsfile", 6, b"world"), true).await;
        assert_eq!((resp.status.code, end_offset(&resp)), (1803, 0));
        rx.piece(piece("a.tsfile", 0, b"hello world"), true).await;
        let sealed = rx
            .seal(FileSeal {
                files: vec![(Some("a.tsfile".into()), 11)],
                ..FileSeal::default()
            })
            .await
            .unwrap();
        assert_eq!(std::fs::read(&sealed.files[0]).unwrap(), b"hello world");
        rx.clear().await;
        assert!(!rx.dir().exists());
    }

    #[tokio::test]
    async fn a_mods_file_and_its_tsfile_seal_together_and_a_mods_offset_reset_starts_it_over() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rx = FileReceiver::new(tmp.path().join("2"));
        rx.piece(piece("a.tsfile.mods", 0, b"mods"), false).await;
        let resp = rx.piece(piece("a.tsfile.mods", 2, b"ds"), false).await;
        assert_eq!((resp.status.code, end_offset(&resp)), (1803, 0));
        rx.piece(piece("a.tsfile.mods", 0, b"mods"), false).await;
        rx.piece(piece("a.tsfile", 0, b"data"), false).await;
        let sealed = rx
            .seal(FileSeal {
                files: vec![
                    (Some("a.tsfile.mods".into()), 4),
                    (Some("a.tsfile".into()), 4),
                ],
                ..FileSeal::default()
            })
            .await
            .unwrap();
        assert_eq!(sealed.files.len(), 2);
        assert_eq!(std::fs::read(&sealed.files[0]).unwrap(), b"mods");
    }

    #[tokio::test]
    async fn a_transfer_past_the_cap_is_refused_and_its_files_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rx = FileReceiver::new(tmp.path().join("4")).with_max_bytes(10);
        // A mods file and its TsFile count together.
        let resp = rx.piece(piece("a.tsfile.mods", 0, b"mods"), false).await;
        assert_eq!((resp.status.code, end_offset(&resp)), (200, 4));
        let resp = rx.piece(piece("a.tsfile", 0, b"123456"), false).await;
        assert_eq!((resp.status.code, end_offset(&resp)), (200, 6));
        let resp = rx.piece(piece("a.tsfile", 6, b"7"), false).await;
        assert_eq!(resp.status.code, 1804);
        assert_eq!(end_offset(&resp), -1);
        assert!(resp
            .status
            .message
            .as_deref()
            .unwrap()
            .contains("pipe_receiver_max_file_bytes = 10"));
        assert!(
            !rx.dir().exists(),
            "the refused transfer's files are removed"
        );
        // The sender starts over; a transfer within the cap is taken.
        let resp = rx.piece(piece("a.tsfile", 6, b"7"), true).await;
        assert_eq!((resp.status.code, end_offset(&resp)), (1803, 0));
        let resp = rx.piece(piece("a.tsfile", 0, b"0123456789"), true).await;
        assert_eq!((resp.status.code, end_offset(&resp)), (200, 10));
        // A single-file transfer replaces its previous file: that one no longer counts.
        let resp = rx.piece(piece("b.tsfile", 0, b"0123456789"), true).await;
        assert_eq!((resp.status.code, end_offset(&resp)), (200, 10));
    }

    #[tokio::test]
    async fn names_that_leave_the_directory_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rx = FileReceiver::new(tmp.path().join("3"));
        for name in ["../x.tsfile", "a/b.tsfile", "", ".hidden", "/etc/passwd"] {
            let resp = rx.piece(piece(name, 0, b"x"), true).await;
            assert_eq!(resp.status.code, 1804, "{name}");
            assert_eq!(end_offset(&resp), -1);
        }
        assert!(!tmp.path().join("x.tsfile").exists());
        let err = rx
            .seal(FileSeal {
                files: vec![(Some("a.tsfile".into()), 0)],
                ..FileSeal::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.status.code, 1804);
    }
}
