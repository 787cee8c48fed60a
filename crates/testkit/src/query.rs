//! Query results as tests compare them: every row of a statement rendered as text, the time first
//! when the result has one.

use duet_proto::client::{Client, ClientError, ClientOptions, Outcome, ResultSet};
use duet_proto::tsblock::TsBlock;

/// `executeRawDataQueryV2` of `paths` over times `[0, 10)` on `client`'s session (fetch size 100):
/// the session API's raw-data query RPC.
pub async fn raw_data_query(
    client: &mut Client,
    paths: &[&str],
) -> Result<duet_proto::t::TSExecuteStatementResp, duet_proto::client::ClientError> {
    let req = duet_proto::t::TSRawDataQueryReq::new(
        client.session_id(),
        paths.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        100,
        0,
        10,
        1,
        None,
        None,
        None,
        None,
    );
    client
        .connection()
        .call("executeRawDataQueryV2", 1, &req)
        .await
}

/// Every row of `sql`'s result, rendered; no rows for a statement without a result set.
pub async fn rows(client: &mut Client, sql: &str) -> Result<Vec<Vec<String>>, ClientError> {
    match client.execute(sql).await? {
        Outcome::Rows(rs) => {
            let (rs, blocks) = client.collect(rs).await?;
            Ok(render(&rs, &blocks))
        }
        Outcome::Done(_) => Ok(Vec::new()),
    }
}

/// Runs one statement in a session of its own on the server at `port` (root, 127.0.0.1).
pub async fn execute_update(port: u16, sql: &str) -> anyhow::Result<()> {
    let run = async {
        let mut client = Client::connect(&ClientOptions {
            port,
            ..ClientOptions::default()
        })
        .await?;
        client.execute_update(sql).await?;
        client.close().await
    };
    run.await.map_err(|e| anyhow::anyhow!("{sql}: {e}"))
}

/// The rows of fetched blocks, rendered.
pub fn render(rs: &ResultSet, blocks: &[TsBlock]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for block in blocks {
        for r in 0..block.n_rows() {
            let mut row = Vec::new();
            if !rs.ignore_time_stamp {
                row.push(block.times[r].to_string());
            }
            row.extend(block.columns.iter().map(|c| c.render(r)));
            out.push(row);
        }
    }
    out
}
