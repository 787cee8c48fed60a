//! The connection of an IoTDB-shaped pipe sender: a Thrift connection to a `duetd` that has passed
//! IoTDB's handshake V2, and `pipeTransfer` calls on it, for the tests that drive the receiver with
//! the bytes of [`crate::iotdb_wire`].

use std::time::Duration;

use anyhow::{bail, Result};
use duet_proto::client::{Client, Connection};
use duet_proto::codec::Protocol;
use duet_proto::t;

use crate::iotdb_wire::{self, request_type};
use crate::Duetd;

/// Opens a pipe connection to `server` and passes IoTDB's handshake V2 with `params` (the sender's
/// `timestampPrecision`, `clusterID`, credentials, ...); a refused handshake is an error.
pub async fn connect(server: &Duetd, params: &[(&str, &str)]) -> Result<Connection> {
    let mut conn = server
        .connection(Protocol::Binary, Duration::from_secs(20))
        .await?;
    let answer = transfer(
        &mut conn,
        request_type::HANDSHAKE_DATANODE_V2,
        iotdb_wire::handshake_v2(params),
    )
    .await?;
    if answer.status.code != 200 {
        bail!("the handshake was refused: {:?}", answer.status);
    }
    Ok(conn)
}

/// One `pipeTransfer` call of request type `type_` (version 1, as IoTDB's sender sends).
pub async fn transfer(
    conn: &mut Connection,
    type_: i16,
    body: Vec<u8>,
) -> Result<t::TPipeTransferResp> {
    Ok(conn
        .pipe_transfer(&t::TPipeTransferReq::new(1, type_, body))
        .await?)
}

/// A fresh `duetd`, a runtime, and on it a root session and a sender's connection past the
/// handshake with `params`: the start of every test that drives the receiver as an IoTDB sender.
pub fn receiver(
    params: &[(&str, &str)],
) -> Result<(Duetd, tokio::runtime::Runtime, Client, Connection)> {
    let server = Duetd::start()?;
    let runtime = tokio::runtime::Runtime::new()?;
    let (client, sender) = runtime.block_on(async {
        let client = Client::connect(&server.client_options()).await?;
        anyhow::Ok((client, connect(&server, params).await?))
    })?;
    Ok((server, runtime, client, sender))
}
