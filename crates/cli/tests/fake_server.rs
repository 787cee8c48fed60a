//! Tests of `duet` against a scripted in-process IoTDB-protocol server, so that paging (`fetchResultsV2`),
//! the time column, table pages, CSV quoting and nulls are checked byte for byte independently of what
//! `duetd` happens to return.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use duet_proto::codec;
use duet_proto::rpc::{self, Decoded, Reply, Request};
use duet_proto::status::{self, StatusCode};
use duet_proto::t;
use duet_proto::tsblock;
use duet_proto::types::{Column, ColumnValues, DataType};
use tokio::io::{AsyncWriteExt, BufStream};
use tokio::net::{TcpListener, TcpStream};

/// Rows of `select`: times 1..=n, an INT32 column (null on even rows) and a TEXT column that needs quoting.
fn data(n: usize) -> (Vec<i64>, Vec<Column>) {
    let times = (1..=n as i64).collect();
    let ints = Column {
        data_type: DataType::Int32,
        nulls: Some((0..n).map(|i| i % 2 == 1).collect()),
        values: ColumnValues::Int32((0..n as i32).map(|i| i * 10).collect()),
    };
    let texts = Column::text((0..n).map(|i| {
        if i == 0 {
            "a,\"b\"".to_string()
        } else {
            format!("t{i}")
        }
    }));
    (times, vec![ints, texts])
}

/// Encodes rows [start, end) as TsBlocks of at most 2 rows, so a result spans several blocks.
fn blocks(times: &[i64], columns: &[Column], start: usize, end: usize) -> Vec<Vec<u8>> {
    (start..end)
        .step_by(2)
        .map(|s| tsblock::encode(times, columns, s, (s + 2).min(end)).unwrap())
        .collect()
}

struct Query {
    rows: usize,
    sent: usize,
}

async fn serve_connection(stream: TcpStream) {
    let mut stream = BufStream::new(stream);
    let mut query: Option<Query> = None;
    let (times, columns) = data(5);
    let mut fetch_size = 5000usize;
    while let Ok(Some(frame)) = codec::read_frame(&mut stream, codec::MAX_REQUEST_FRAME_BYTES).await
    {
        let Decoded::Call(header, request) = rpc::decode_call(&frame).unwrap() else {
            panic!("bad arguments")
        };
        let reply = match request {
            Request::OpenSession(req) => {
                if req.password.as_deref() == Some("root") {
                    let mut conf = BTreeMap::new();
                    conf.insert("timestamp_precision".to_string(), "ms".to_string());
                    Reply::OpenSession(t::TSOpenSessionResp::new(
                        status::success(),
                        t::TSProtocolVersion::IOTDB_SERVICE_PROTOCOL_V3,
                        Some(42),
                        Some(conf),
                    ))
                } else {
                    Reply::OpenSession(t::TSOpenSessionResp::new(
                        status::failure(StatusCode::WrongLoginPassword, "Authentication failed."),
                        t::TSProtocolVersion::IOTDB_SERVICE_PROTOCOL_V3,
                        None,
                        None,
                    ))
                }
            }
            Request::RequestStatementId { .. } => Reply::StatementId(1),
            Request::SetTimeZone(_) | Request::CloseOperation(_) | Request::CloseSession(_) => {
                Reply::Status(status::success())
            }
            Request::GetProperties => Reply::Properties(t::ServerProperties::new(
                "1.3.2".to_string(),
                vec![],
                "ms".to_string(),
                None,
                None,
                None,
                Some("fake".to_string()),
                None,
            )),
            Request::Execute { req, .. } => {
                fetch_size = req.fetch_size.unwrap_or(5000) as usize;
                let sql = req.statement.trim().to_lowercase();
                if let Some(n) = sql.strip_prefix("select ") {
                    let rows: usize = n.parse().unwrap();
                    let first = rows.min(fetch_size);
                    query = Some(Query { rows, sent: first });
                    Reply::Execute(t::TSExecuteStatementResp::new(
                        status::success(),
                        Some(7),
                        Some(vec!["root.sg.d.s".to_string(), "root.sg.d.t".to_string()]),
                        None,
                        Some(false),
                        Some(vec!["INT32".to_string(), "TEXT".to_string()]),
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        Some(blocks(&times, &columns, 0, first)),
                        Some(first < rows),
                        None,
                        None,
                        None,
                    ))
                } else if sql == "show names" {
                    let names = vec![Column::text(["ÄÖÜ", "x"])];
                    Reply::Execute(t::TSExecuteStatementResp::new(
                        status::success(),
                        Some(8),
                        Some(vec!["Name".to_string()]),
                        None,
                        Some(true),
                        Some(vec!["TEXT".to_string()]),
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        Some(vec![tsblock::encode(&[0, 0], &names, 0, 2).unwrap()]),
                        Some(false),
                        None,
                        None,
                        None,
                    ))
                } else if sql.starts_with("bad") {
                    Reply::Execute(t::TSExecuteStatementResp::new(
                        status::failure(
                            StatusCode::SqlParseError,
                            "line 1:0: mismatched input 'bad'",
                        ),
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                    ))
                } else {
                    Reply::Execute(t::TSExecuteStatementResp::new(
                        status::success(),
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                    ))
                }
            }
            Request::FetchResults(_) => {
                let q = query.as_mut().unwrap();
                let end = (q.sent + fetch_size).min(q.rows);
                let page = blocks(&times, &columns, q.sent, end);
                q.sent = end;
                Reply::Fetch(t::TSFetchResultsResp::new(
                    status::success(),
                    true,
                    true,
                    None,
                    None,
                    Some(page),
                    Some(end < q.rows),
                ))
            }
            other => panic!("unexpected request {other:?}"),
        };
        codec::write_frame(&mut stream, &rpc::encode_reply(&header, &reply).unwrap())
            .await
            .unwrap();
        stream.flush().await.unwrap();
    }
}

/// Starts the fake server on a background thread; returns its port.
fn fake_server() -> u16 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        rt.block_on(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(serve_connection(stream));
            }
        })
    });
    port
}

fn duet(port: u16, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(duet_testkit::binary("duet"))
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

// The fake server's five rows as the table format prints them.
const BORDER: &str = "+----+-----------+-----------+\n";
const HEADER: &str = "|Time|root.sg.d.s|root.sg.d.t|\n";
const ROWS: [&str; 5] = [
    "|   1|          0|      a,\"b\"|\n",
    "|   2|       null|         t1|\n",
    "|   3|         20|         t2|\n",
    "|   4|       null|         t3|\n",
    "|   5|         40|         t4|\n",
];

/// One page of the table: the bordered header, then `rows`, then a border.
fn page(rows: &[&str]) -> String {
    [BORDER, HEADER, BORDER]
        .into_iter()
        .chain(rows.iter().copied())
        .chain([BORDER])
        .collect()
}

#[test]
fn table_over_several_fetches() {
    let port = fake_server();
    for fetch in ["5000", "2", "1"] {
        let (code, out, err) = duet(port, &["--fetch-size", fetch, "-e", "select 5"]);
        assert_eq!((code, err.as_str()), (0, ""), "{out}");
        let five_rows = page(&ROWS) + "Total line number = 5\n";
        assert_eq!(out, five_rows, "fetch size {fetch}");
    }
}

#[test]
fn table_pages_of_max_prc_rows() {
    let port = fake_server();
    let (code, out, _) = duet(
        port,
        &["-maxPRC", "3", "--fetch-size", "2", "-e", "select 5"],
    );
    assert_eq!(code, 0);
    let pages = page(&ROWS[..3]) + &page(&ROWS[3..]) + "Total line number = 5\n";
    assert_eq!(out, pages);
}

#[test]
fn csv_with_quoting_and_nulls() {
    let port = fake_server();
    let (code, out, _) = duet(
        port,
        &[
            "--format",
            "csv",
            "--fetch-size",
            "2",
            "-e",
            "select 5; create x",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "Time,root.sg.d.s,root.sg.d.t\n1,0,\"a,\"\"b\"\"\"\n2,null,t1\n3,20,t2\n4,null,t3\n5,40,t4\n");
}

#[test]
fn ignore_time_stamp_and_unicode_widths() {
    let port = fake_server();
    let (code, out, _) = duet(port, &["-c", "-e", "show names"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "+----+\n|Name|\n+----+\n| ÄÖÜ|\n|   x|\n+----+\nTotal line number = 2\n"
    );
}

#[test]
fn empty_result_set() {
    let port = fake_server();
    let (code, out, _) = duet(port, &["-e", "select 0"]);
    assert_eq!(code, 0);
    assert_eq!(out, page(&[]) + "Empty set.\n");
}

#[test]
fn errors_and_statuses() {
    let port = fake_server();
    let (code, out, err) = duet(port, &["-e", "create x; bad; create y"]);
    assert_eq!(code, 1);
    assert_eq!(out, "Msg: The statement is executed successfully.\n");
    assert_eq!(err, "Msg: 700: line 1:0: mismatched input 'bad'\n");

    let (code, out, err) = duet(
        port,
        &["--continue-on-error", "-e", "create x; bad; create y"],
    );
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "Msg: The statement is executed successfully.\n".repeat(2)
    );
    assert_eq!(err, "Msg: 700: line 1:0: mismatched input 'bad'\n");

    let (code, out, err) = duet(port, &["-pw", "nope", "-e", "create x"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err, "Msg: 801: Authentication failed.\n");
}

#[test]
fn script_file_reports_file_lines() {
    let port = fake_server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sql");
    std::fs::write(&path, "create a;\n-- comment\n\nbad\n  thing;\ncreate b;\n").unwrap();
    let path = path.to_str().unwrap();
    let (code, out, err) = duet(port, &["-f", path]);
    assert_eq!(code, 1);
    assert_eq!(out, "Msg: The statement is executed successfully.\n");
    assert_eq!(
        err,
        format!("{path}:4: Msg: 700: line 1:0: mismatched input 'bad'\n")
    );
}
