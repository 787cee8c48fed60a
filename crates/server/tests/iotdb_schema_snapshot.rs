//! Duet receiving an IoTDB 2.x sender's schema history: a schema region's MTree snapshot (and tag
//! log) in `TRANSFER_SCHEMA_SNAPSHOT_PIECE`s (101) and its seal (102), the bytes written by
//! `duet_testkit::iotdb_wire` from IoTDB's serializers. The database, series (types, encodings,
//! compressors, aligned devices) and template activations it describes appear on Duet as the seal's
//! type list and path pattern select them; a truncated or unsupported snapshot is refused whole.
//! Likewise the ConfigNode's snapshots (201/202): databases, device templates and their set paths,
//! TTL rules, and users with the password hash IoTDB stores. Issue 10.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use duet_proto::client::{Client, Connection};
use duet_proto::t;
use duet_testkit::iotdb_wire::{
    self, data_type as dt, request_type as rt, ConfigMNode, MTreeNode, UserGrants,
};
use duet_testkit::pipe_sender;
use duet_testkit::Duetd;

mod common;
use common::{
    assert_status, iotdb_hash, logs_in, privileges_of, query, timeseries, transfer,
    BOB_PW22_IOTDB_HEX,
};

/// The handshake parameters of this file's IoTDB-shaped sender.
const SENDER: &[(&str, &str)] = &[
    ("timestampPrecision", "ms"),
    ("clusterID", "5d0e-iotdb-schema-sender"),
    ("username", "root"),
    ("password", "root"),
    ("markAsPipeRequest", "true"),
];

/// A pipe connection past IoTDB's handshake V2, as a default 2.x sender opens it.
async fn iotdb_sender(server: &Duetd) -> Connection {
    pipe_sender::connect(server, SENDER).await.unwrap()
}

fn series(name: &str, type_code: u8, encoding: u8, compressor: u8) -> MTreeNode {
    MTreeNode::Measurement {
        name: name.into(),
        type_code,
        encoding,
        compressor,
        alias: None,
    }
}

fn device(name: &str, aligned: Option<bool>, children: Vec<MTreeNode>) -> MTreeNode {
    MTreeNode::Device {
        name: name.into(),
        aligned,
        template: None,
        children,
    }
}

/// root.sg: d1 {s1 INT64 RLE SNAPPY, s2 DOUBLE GORILLA LZ4 (alias)}, g.a aligned {x BOOLEAN PLAIN
/// UNCOMPRESSED, y TEXT DICTIONARY ZSTD}, g.tpl (activated template 3, no series of its own).
fn region() -> Vec<MTreeNode> {
    vec![
        device(
            "d1",
            Some(false),
            vec![
                series("s1", dt::INT64, 2, 1),
                MTreeNode::Measurement {
                    name: "s2".into(),
                    type_code: dt::DOUBLE,
                    encoding: 8,
                    compressor: 7,
                    alias: Some("temperature".into()),
                },
            ],
        ),
        MTreeNode::Internal {
            name: "g".into(),
            children: vec![
                device(
                    "a",
                    Some(true),
                    vec![series("x", dt::BOOLEAN, 0, 0), series("y", dt::TEXT, 1, 8)],
                ),
                MTreeNode::Device {
                    name: "tpl".into(),
                    aligned: None,
                    template: Some(3),
                    children: Vec::new(),
                },
            ],
        },
    ]
}

/// Sends the MTree snapshot in pieces of `piece` bytes as IoTDB's sender does — seeking to the end
/// offset a 1803 answer gives — with the first piece sent twice (as when its answer is lost: the
/// receiver, for a file that is not a TsFile, starts it over), then a tag log and the seal; the
/// seal's answer.
async fn send_snapshot(
    sender: &mut Connection,
    mtree: &[u8],
    piece: usize,
    database: &str,
    pattern: &str,
    types: &str,
) -> t::TSStatus {
    let mut at = 0usize;
    let mut resent = false;
    let mut resets = 0;
    while at < mtree.len() {
        let end = (at + piece).min(mtree.len());
        let resp = transfer(
            sender,
            rt::TRANSFER_SCHEMA_SNAPSHOT_PIECE,
            iotdb_wire::file_piece("mtree.snapshot", at as i64, &mtree[at..end]),
        )
        .await;
        match resp.status.code {
            200 => at = end,
            1803 => {
                resets += 1;
                at = usize::try_from(i64::from_be_bytes(resp.body.unwrap().try_into().unwrap()))
                    .unwrap();
            }
            _ => panic!("{:?}", resp.status),
        }
        if at > 0 && at < mtree.len() && !resent {
            resent = true;
            at = 0;
        }
    }
    assert_eq!(resets, usize::from(mtree.len() > piece), "offset resets");
    let tag_log = vec![0u8; 64];
    let resp = transfer(
        sender,
        rt::TRANSFER_SCHEMA_SNAPSHOT_PIECE,
        iotdb_wire::file_piece("tlog.txt.snapshot", 0, &tag_log),
    )
    .await;
    assert_eq!(resp.status.code, 200, "{:?}", resp.status);
    transfer(
        sender,
        rt::TRANSFER_SCHEMA_SNAPSHOT_SEAL,
        iotdb_wire::schema_snapshot_seal(
            ("mtree.snapshot", mtree.len() as i64),
            Some(("tlog.txt.snapshot", tag_log.len() as i64)),
            pattern,
            database,
            types,
        ),
    )
    .await
    .status
}

async fn databases(client: &mut Client) -> Vec<String> {
    query(client, "show databases")
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

fn row(path: &str, t: &str, e: &str, c: &str) -> [String; 4] {
    [path.into(), t.into(), e.into(), c.into()]
}

#[test]
fn a_schema_snapshot_creates_its_database_series_and_aligned_devices_as_its_seal_selects() {
    let (server, rt, mut client, mut sender) = pipe_sender::receiver(SENDER).unwrap();
    rt.block_on(async {
        // A template is set here over root.sg.g, so the snapshot's activation can be applied.
        for sql in [
            "create database root.sg",
            "create device template t1 (temperature FLOAT encoding=RLE)",
            "set device template t1 to root.sg.g.tpl",
        ] {
            client.execute(sql).await.unwrap();
        }
        let mtree = iotdb_wire::mtree_snapshot("sg", &region());
        let status = send_snapshot(&mut sender, &mtree, 40, "root.sg", "root.**", "19,22,53").await;
        assert_eq!(status.code, 200, "{status:?}");
        assert!(databases(&mut client)
            .await
            .contains(&"root.sg".to_string()));
        assert_eq!(
            timeseries(&mut client, "root.sg.**").await,
            [
                row("root.sg.d1.s1", "INT64", "RLE", "SNAPPY"),
                row("root.sg.d1.s2", "DOUBLE", "GORILLA", "LZ4"),
                row("root.sg.g.a.x", "BOOLEAN", "PLAIN", "UNCOMPRESSED"),
                row("root.sg.g.a.y", "TEXT", "DICTIONARY", "ZSTD"),
                row("root.sg.g.tpl.temperature", "FLOAT", "RLE", "LZ4"),
            ]
        );
        let devices = query(&mut client, "show devices root.sg.**").await;
        let aligned: Vec<(&str, &str)> = devices
            .iter()
            .map(|r| (r[0].as_str(), r[1].as_str()))
            .collect();
        assert!(aligned.contains(&("root.sg.g.a", "true")), "{devices:?}");
        assert!(aligned.contains(&("root.sg.d1", "false")), "{devices:?}");
        // The same snapshot again (a sender that retried) changes nothing.
        let status =
            send_snapshot(&mut sender, &mtree, 1000, "root.sg", "root.**", "19,22,53").await;
        assert_eq!(status.code, 200, "{status:?}");
        assert_eq!(timeseries(&mut client, "root.sg.**").await.len(), 5);
        // The series take writes of their types.
        client
            .execute("insert into root.sg.d1(time, s1, s2) values (5, 7, 2.5)")
            .await
            .unwrap();
        assert_eq!(
            query(&mut client, "select s1, s2 from root.sg.d1").await,
            [["5", "7", "2.5"]]
        );

        // The seal's pattern and type list select: only root.other.d1's plain series (type 19)
        // under root.other.d1.**; the aligned device (22) is left out.
        let other = iotdb_wire::mtree_snapshot("other", &region());
        let status = send_snapshot(
            &mut sender,
            &other,
            1000,
            "root.other",
            "root.other.d1.s1",
            "19,53",
        )
        .await;
        assert_eq!(status.code, 200, "{status:?}");
        assert_eq!(
            timeseries(&mut client, "root.other.**").await,
            [row("root.other.d1.s1", "INT64", "RLE", "SNAPPY")]
        );
        // A snapshot of a database the pattern cannot touch applies nothing, not even the database.
        let status = send_snapshot(
            &mut sender,
            &iotdb_wire::mtree_snapshot("far", &region()),
            1000,
            "root.far",
            "root.other.**",
            "19,22,53",
        )
        .await;
        assert_eq!(status.code, 200, "{status:?}");
        assert!(!databases(&mut client)
            .await
            .contains(&"root.far".to_string()));
        // The receiver's directory is emptied after each seal.
        let received = server.data_dir().join("pipe-receiver");
        let left: Vec<_> = std::fs::read_dir(&received)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
    });
}

#[test]
fn a_truncated_or_unsupported_snapshot_is_refused_whole_and_a_missing_template_is_reported() {
    let (_server, rt, mut client, mut sender) = pipe_sender::receiver(SENDER).unwrap();
    rt.block_on(async {
        let mtree = iotdb_wire::mtree_snapshot("cut", &region());
        // Truncated files (the seal agreeing with what was sent) are refused with a status naming
        // why, and nothing of them is applied — not even the database.
        for cut in [1, mtree.len() / 2, mtree.len() - 1] {
            let status = send_snapshot(
                &mut sender,
                &mtree[..cut],
                1000,
                "root.cut",
                "root.**",
                "19,22,53",
            )
            .await;
            assert_eq!(status.code, 1805, "cut {cut}: {status:?}");
            let message = status.message.unwrap_or_default();
            assert!(message.contains("nothing of it was applied"), "{message}");
            assert!(!databases(&mut client)
                .await
                .contains(&"root.cut".to_string()));
        }
        // A seal whose length disagrees with the pieces is a file error.
        let resp = transfer(
            &mut sender,
            rt::TRANSFER_SCHEMA_SNAPSHOT_PIECE,
            iotdb_wire::file_piece("mtree.snapshot", 0, &mtree),
        )
        .await;
        assert_eq!(resp.status.code, 200);
        let resp = transfer(
            &mut sender,
            rt::TRANSFER_SCHEMA_SNAPSHOT_SEAL,
            iotdb_wire::schema_snapshot_seal(
                ("mtree.snapshot", mtree.len() as i64 + 1),
                None,
                "root.**",
                "root.cut",
                "19",
            ),
        )
        .await;
        assert_eq!(resp.status.code, 1804, "{:?}", resp.status);

        // A logical view cannot be read past: the snapshot is refused naming it.
        let mut view = iotdb_wire::mtree_snapshot("cut", &[device("d", Some(false), Vec::new())]);
        // The device claims one child: a view node (type 5) with its name and a schema Duet cannot
        // read.
        // (Its node is the last 16 bytes: type, child count, name, template id and flag, aligned.)
        let at = view.len() - 15;
        view[at..at + 4].copy_from_slice(&1i32.to_be_bytes());
        view.push(5);
        view.extend_from_slice(&2i32.to_be_bytes());
        view.extend_from_slice(b"v1");
        view.extend_from_slice(&[0; 24]);
        let status = send_snapshot(&mut sender, &view, 1000, "root.cut", "root.**", "19,73").await;
        assert_status(&status, 1805, "logical view d.v1");
        assert!(!databases(&mut client)
            .await
            .contains(&"root.cut".to_string()));

        // No template is set here over root.cut.g.tpl: everything else is applied and the answer
        // (1810) names the activation it left out.
        let status =
            send_snapshot(&mut sender, &mtree, 1000, "root.cut", "root.**", "19,22,53").await;
        assert_status(&status, 1810, "root.cut.g.tpl");
        assert_eq!(timeseries(&mut client, "root.cut.**").await.len(), 4);

        // A series that exists here with another type is left out and named; the rest applies.
        for sql in [
            "create database root.clash",
            "create timeseries root.clash.d1.s1 with datatype=TEXT",
        ] {
            client.execute(sql).await.unwrap();
        }
        let clash = iotdb_wire::mtree_snapshot("clash", &region());
        let status =
            send_snapshot(&mut sender, &clash, 1000, "root.clash", "root.**", "19,22").await;
        assert_eq!(status.code, 1810, "{status:?}");
        assert!(status
            .message
            .unwrap_or_default()
            .contains("root.clash.d1.s1 (INT64 in the snapshot, TEXT here)"));
        assert_eq!(
            timeseries(&mut client, "root.clash.d1.*").await,
            [
                row("root.clash.d1.s1", "TEXT", "PLAIN", "LZ4"),
                row("root.clash.d1.s2", "DOUBLE", "GORILLA", "LZ4"),
            ]
        );
    });
}

/// Sends `files` as config snapshot pieces (201) and seals them (202); the seal's answer.
async fn send_config_snapshot(
    sender: &mut Connection,
    files: &[(&str, Vec<u8>)],
    file_type: u8,
    pattern: &str,
    types: &str,
) -> t::TSStatus {
    send_config_snapshot_as(sender, files, file_type, pattern, types, "root").await
}

/// The same with the seal's `authUserName` set to `auth_user`.
async fn send_config_snapshot_as(
    sender: &mut Connection,
    files: &[(&str, Vec<u8>)],
    file_type: u8,
    pattern: &str,
    types: &str,
    auth_user: &str,
) -> t::TSStatus {
    for (name, bytes) in files {
        let resp = transfer(
            sender,
            rt::TRANSFER_CONFIG_SNAPSHOT_PIECE,
            iotdb_wire::file_piece(name, 0, bytes),
        )
        .await;
        assert_eq!(resp.status.code, 200, "{:?}", resp.status);
    }
    let sealed: Vec<(&str, i64)> = files.iter().map(|(n, b)| (*n, b.len() as i64)).collect();
    transfer(
        sender,
        rt::TRANSFER_CONFIG_SNAPSHOT_SEAL,
        iotdb_wire::config_snapshot_seal_as(&sealed, file_type, pattern, types, auth_user),
    )
    .await
    .status
}

/// Sends one user's file as a config snapshot of the USER kind (pattern `root.**`, the plan types
/// `types`); the seal's answer.
async fn send_user_file(
    sender: &mut Connection,
    name: &str,
    file: Vec<u8>,
    types: &str,
) -> t::TSStatus {
    send_config_snapshot(sender, &[(name, file)], USER, "root.**", types).await
}

/// CNSnapshotFileType codes.
const SCHEMA: u8 = 4;
const TTL: u8 = 5;
const USER: u8 = 1;
const ROLE: u8 = 2;
const USER_ROLE: u8 = 3;
const LBAC_POLICY: u8 = 7;

/// root { ln { sg1 { d (template 1 set) } }, top }
fn config_tree() -> Vec<ConfigMNode> {
    vec![
        ConfigMNode::Internal {
            name: "ln".into(),
            template: None,
            children: vec![ConfigMNode::Database {
                name: "sg1".into(),
                full_path: "root.ln.sg1".into(),
                template: None,
                children: vec![ConfigMNode::Internal {
                    name: "d".into(),
                    template: Some(1),
                    children: Vec::new(),
                }],
            }],
        },
        ConfigMNode::Database {
            name: "top".into(),
            full_path: "root.top".into(),
            template: None,
            children: Vec::new(),
        },
    ]
}

#[test]
fn a_confignode_snapshot_creates_databases_templates_set_paths_and_ttls() {
    let (_server, rt, mut client, mut sender) = pipe_sender::receiver(SENDER).unwrap();
    rt.block_on(async {
        let mtree = iotdb_wire::config_mtree_snapshot(&config_tree());
        let templates = iotdb_wire::template_table_snapshot(&[(
            1,
            "tc",
            false,
            &[
                ("temperature", dt::FLOAT, 2, 1),
                ("status", dt::BOOLEAN, 0, 0),
            ],
        )]);
        // A truncated ConfigMTree is refused whole: no template, no database.
        let status = send_config_snapshot(
            &mut sender,
            &[
                ("cluster_schema.bin", mtree[..mtree.len() - 3].to_vec()),
                ("template_info.bin", templates.clone()),
            ],
            SCHEMA,
            "root.**",
            "200,800,813",
        )
        .await;
        assert_status(&status, 1805, "nothing of it was applied");
        assert!(!databases(&mut client)
            .await
            .contains(&"root.top".to_string()));
        assert!(query(&mut client, "show device templates").await.is_empty());

        let status = send_config_snapshot(
            &mut sender,
            &[
                ("cluster_schema.bin", mtree.clone()),
                ("template_info.bin", templates),
            ],
            SCHEMA,
            "root.**",
            "200,800,813",
        )
        .await;
        assert_eq!(status.code, 200, "{status:?}");
        let dbs = databases(&mut client).await;
        assert!(
            dbs.contains(&"root.ln.sg1".to_string()) && dbs.contains(&"root.top".to_string()),
            "{dbs:?}"
        );
        assert_eq!(
            query(&mut client, "show paths set device template tc").await,
            [["root.ln.sg1.d"]]
        );
        // The schema region's snapshot then activates the template on the device.
        let region = iotdb_wire::mtree_snapshot(
            "sg1",
            &[MTreeNode::Device {
                name: "d".into(),
                aligned: None,
                template: Some(1),
                children: Vec::new(),
            }],
        );
        let status =
            send_snapshot(&mut sender, &region, 1000, "root.ln.sg1", "root.**", "53").await;
        assert_eq!(status.code, 200, "{status:?}");
        assert_eq!(
            timeseries(&mut client, "root.ln.sg1.d.*").await,
            [
                row("root.ln.sg1.d.status", "BOOLEAN", "PLAIN", "UNCOMPRESSED"),
                row("root.ln.sg1.d.temperature", "FLOAT", "RLE", "SNAPPY"),
            ]
        );

        // TTL rules: the pattern root.ln.** covers root.ln.sg1.**, not root.**, which is named.
        let ttl =
            iotdb_wire::ttl_snapshot(&[("root.ln.sg1.**", 3_600_000), ("root.**", 86_400_000)]);
        let status =
            send_config_snapshot(&mut sender, &[("ttl.bin", ttl)], TTL, "root.ln.**", "201").await;
        assert_status(&status, 1810, "root.**");
        assert_eq!(
            query(&mut client, "show ttl on root.ln.sg1.**").await,
            [["root.ln.sg1.**", "3600000"]]
        );
        assert!(query(&mut client, "show ttl on root.**")
            .await
            .iter()
            .all(|r| r[0] != "root.**"));
    });
}

/// The USER kind of a ConfigNode snapshot, one user's file per seal as IoTDB's sender sends its
/// existing users: each layout (version 2 with session limits, version 1, IoTDB 1.3's) gives a user
/// who logs in with its IoTDB password and no other; a truncated file is refused whole; grants are
/// applied; a user that exists here takes the snapshot's password, as from plan 638; root is never
/// taken; label policies are refused by name.
#[test]
fn a_user_snapshot_gives_users_who_log_in_with_their_iotdb_passwords() {
    let server = Duetd::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // OpenJDK 17's IoTDB hashes of "bob_pw22", "secret1" and "IoTDB@2011".
    let bob_hash = iotdb_hash(BOB_PW22_IOTDB_HEX);
    let secret_hash = iotdb_hash("efbfbd2defbfbdefbfbd59efbfbdefbfbd11775936efbfbddfbb7929");
    let iotdb_default_hash =
        iotdb_hash("efbfbdefbfbdefbfbdefbfbd2c1cefbfbdefbfbd2c1c751c325c42efbfbd");
    rt.block_on(async {
        let mut sender = iotdb_sender(&server).await;
        let grants = UserGrants {
            system: 0x0001_0001,
            paths: vec![("root.sg.**", 0b11)],
            any: 0,
            databases: vec![("db1", 1, vec![("t1", 2)])],
        };
        let bob = iotdb_wire::user_file_v2(10_000, "bob", &bob_hash, (-1, 0), &grants);

        // Truncated: refused whole, nothing applied.
        let status = send_user_file(
            &mut sender,
            "10000.profile",
            bob[..bob.len() - 2].to_vec(),
            "638,626",
        )
        .await;
        assert_status(&status, 1805, "nothing of it was applied");
        assert!(!logs_in(&server, "bob", "bob_pw22").await);

        // Whole, with the grant types asked for: the user and its tree-model grants apply (the
        // table model's are not asked for by 638 and 626).
        let status = send_user_file(&mut sender, "10000.profile", bob.clone(), "638,626").await;
        assert_eq!(status.code, 200, "{status:?}");
        let mut client = Client::connect(&server.client_options()).await.unwrap();
        assert_eq!(
            privileges_of(&mut client, "user bob").await,
            [
                "|root.**|MANAGE_DATABASE|true",
                "|root.sg.**|READ_DATA|false",
                "|root.sg.**|WRITE_DATA|false",
            ]
        );
        assert!(logs_in(&server, "bob", "bob_pw22").await);
        assert!(!logs_in(&server, "bob", "bob_pw2").await);

        // Version 1 and IoTDB 1.3's layout, without grants and only 638 asked for: 200.
        let carol = iotdb_wire::user_file_v1("carol", &secret_hash, &UserGrants::default());
        let dave = iotdb_wire::user_file_iotdb13("dave", &iotdb_default_hash, 0, &[]);
        for (file, user) in [("carol.profile", carol), ("dave.profile", dave)] {
            let status = send_user_file(&mut sender, file, user, "638").await;
            assert_eq!(status.code, 200, "{file}: {status:?}");
        }
        assert!(logs_in(&server, "carol", "secret1").await);
        assert!(!logs_in(&server, "carol", "secret2").await);
        assert!(logs_in(&server, "dave", "IoTDB@2011").await);
        assert!(!logs_in(&server, "dave", "root").await);

        // A user that exists here takes the snapshot's password (as from plan 638).
        client
            .execute_update("create user erin 'erin_local1'")
            .await
            .unwrap();
        assert!(logs_in(&server, "erin", "erin_local1").await);
        let erin = iotdb_wire::user_file_v2(10_001, "erin", &secret_hash, (-1, 0), &grants);
        let status = send_user_file(&mut sender, "10001.profile", erin, "638").await;
        assert_eq!(status.code, 200, "{status:?}");
        assert!(logs_in(&server, "erin", "secret1").await);
        assert!(!logs_in(&server, "erin", "erin_local1").await);

        // Root is never taken from a snapshot.
        let root = iotdb_wire::user_file_v2(0, "root", &secret_hash, (-1, 0), &grants);
        let status = send_user_file(&mut sender, "0.profile", root, "638").await;
        assert_eq!(status.code, 1809, "{status:?}");
        assert!(logs_in(&server, "root", "root").await);
        assert!(!logs_in(&server, "root", "secret1").await);

        // A user file version Duet does not read is refused by name.
        let status = send_user_file(
            &mut sender,
            "frank.profile",
            vec![0, 0, 0, 5, b'f', b'r'],
            "638",
        )
        .await;
        assert_status(&status, 1805, "format version 5");

        // Label policies: not applied, the answer names the kind.
        let status = send_config_snapshot(
            &mut sender,
            &[("policy", vec![0, 0, 0, 0])],
            LBAC_POLICY,
            "root.**",
            "",
        )
        .await;
        assert_status(&status, 1810, "LBAC_POLICY");
    });
}

/// The ROLE and USER_ROLE kinds and a USER file's grants, as IoTDB's sender sends its roles,
/// users' roles and privileges when a pipe's `inclusion` covers `auth`: roles of each layout are
/// created with their tree-model privileges (the grant option kept), a user's roles are granted
/// from its `<user>_role.profile`, the table model's grants are named when the seal asks for them,
/// a truncated role file changes nothing, and a handshake user without MANAGE_ROLE is refused.
#[test]
fn an_iotdb_snapshots_roles_grants_and_users_roles_apply() {
    let server = Duetd::start().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sys = iotdb_wire::system_privilege_bit;
    let path = iotdb_wire::path_privilege_bit;
    rt.block_on(async {
        let mut sender = iotdb_sender(&server).await;
        let mut client = Client::connect(&server.client_options()).await.unwrap();

        // A role as current master writes it: USE_PIPE with its grant option, two path privileges.
        let ops = iotdb_wire::role_file(
            2,
            "ops",
            &UserGrants {
                system: sys("USE_PIPE") | sys("USE_PIPE") << 16,
                paths: vec![("root.sg.**", path("READ_DATA") | path("WRITE_SCHEMA"))],
                ..UserGrants::default()
            },
        );
        // Truncated: refused whole, no role.
        let status = send_config_snapshot(
            &mut sender,
            &[("ops.profile", ops[..ops.len() - 3].to_vec())],
            ROLE,
            "root.**",
            "622,625",
        )
        .await;
        assert_status(&status, 1805, "nothing of it was applied");
        assert!(query(&mut client, "list role").await.is_empty());
        let status = send_config_snapshot(
            &mut sender,
            &[("ops.profile", ops)],
            ROLE,
            "root.**",
            "622,625",
        )
        .await;
        assert_eq!(status.code, 200, "{status:?}");
        assert_eq!(
            privileges_of(&mut client, "role ops").await,
            [
                "ops|root.**|USE_PIPE|true",
                "ops|root.sg.**|READ_DATA|false",
                "ops|root.sg.**|WRITE_SCHEMA|false",
            ]
        );
        // IoTDB 1.3's and 2.0's role layouts; only CreateRole asked for: no grants.
        let readers =
            iotdb_wire::role_file_iotdb13("readers", 0, &[("root.**", path("READ_SCHEMA"))]);
        let status = send_config_snapshot(
            &mut sender,
            &[("readers.profile", readers)],
            ROLE,
            "root.**",
            "622,625",
        )
        .await;
        assert_eq!(status.code, 200, "{status:?}");
        let audit = iotdb_wire::role_file(
            1,
            "auditors",
            &UserGrants {
                system: sys("MAINTAIN"),
                ..UserGrants::default()
            },
        );
        let status = send_config_snapshot(
            &mut sender,
            &[("auditors.profile", audit)],
            ROLE,
            "root.**",
            "622",
        )
        .await;
        assert_eq!(status.code, 200, "{status:?}");
        assert_eq!(
            privileges_of(&mut client, "role readers").await,
            ["readers|root.**|READ_SCHEMA|false"]
        );
        assert!(privileges_of(&mut client, "role auditors").await.is_empty());
        let mut roles: Vec<String> = query(&mut client, "list role")
            .await
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        roles.sort();
        assert_eq!(roles, ["auditors", "ops", "readers"]);

        // A user with a tree grant and a table-model grant: with a table-model type in the seal,
        // the tree grant applies and the other is named.
        let alice = iotdb_wire::user_file_v1(
            "alice",
            &iotdb_hash(BOB_PW22_IOTDB_HEX),
            &UserGrants {
                system: sys("MANAGE_USER"),
                paths: vec![("root.a.**", path("READ_DATA") | path("READ_DATA") << 16)],
                any: 0,
                databases: vec![("db1", 1, vec![])],
            },
        );
        let status = send_user_file(&mut sender, "alice.profile", alice, "638,626,2000").await;
        assert_status(&status, 1810, "privileges on database db1");
        assert_eq!(
            privileges_of(&mut client, "user alice").await,
            ["|root.**|MANAGE_USER|false", "|root.a.**|READ_DATA|true",]
        );

        // Her roles, from `alice_role.profile`: granted, and LIST PRIVILEGES shows theirs too.
        let status = send_config_snapshot(
            &mut sender,
            &[(
                "alice_role.profile",
                iotdb_wire::user_role_file(&["ops", "readers"]),
            )],
            USER_ROLE,
            "root.**",
            "627",
        )
        .await;
        assert_eq!(status.code, 200, "{status:?}");
        let mut her_roles: Vec<String> = query(&mut client, "list role of user alice")
            .await
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        her_roles.sort();
        assert_eq!(her_roles, ["ops", "readers"]);
        // Current master names the file by the user's id and the user in the seal's
        // `authUserName`.
        client
            .execute_update("create user carl 'carl_pw_123'")
            .await
            .unwrap();
        let status = send_config_snapshot_as(
            &mut sender,
            &[(
                "10002_role.profile",
                iotdb_wire::user_role_file(&["auditors"]),
            )],
            USER_ROLE,
            "root.**",
            "627",
            "carl",
        )
        .await;
        assert_eq!(status.code, 200, "{status:?}");
        assert_eq!(
            query(&mut client, "list role of user carl").await,
            [["auditors".to_string()]]
        );
        // A user that does not exist here, and a file named by an id with no user in the seal,
        // are refused by name.
        for (file, auth_user, part) in [
            ("nobody_role.profile", "root", "does not exist"),
            ("10000_role.profile", "", "names no authUserName"),
        ] {
            let status = send_config_snapshot_as(
                &mut sender,
                &[(file, iotdb_wire::user_role_file(&["ops"]))],
                USER_ROLE,
                "root.**",
                "627",
                auth_user,
            )
            .await;
            assert_status(&status, 1810, part);
        }

        // A handshake user without MANAGE_ROLE creates no role.
        client
            .execute_update("create user part 'part_pw_123'")
            .await
            .unwrap();
        let mut limited = pipe_sender::connect(
            &server,
            &[
                ("timestampPrecision", "ms"),
                ("clusterID", "5d0e-iotdb-schema-sender"),
                ("username", "part"),
                ("password", "part_pw_123"),
                ("markAsPipeRequest", "true"),
            ],
        )
        .await
        .unwrap();
        let status = send_config_snapshot(
            &mut limited,
            &[(
                "x.profile",
                iotdb_wire::role_file(2, "x", &UserGrants::default()),
            )],
            ROLE,
            "root.**",
            "622,625",
        )
        .await;
        assert_status(&status, 803, "MANAGE_ROLE");
        assert!(!query(&mut client, "list role")
            .await
            .iter()
            .any(|r| r[0] == "x"));
    });
}
