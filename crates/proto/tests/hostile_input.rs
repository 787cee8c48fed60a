//! Hostile bytes against every decoder of `duet-proto`: lengths and counts that claim more than the input
//! holds, negative lengths, deep nesting. Each must be an error, promptly, without reserving memory for
//! the claim — before these bounds existed, the first case aborted the process (a ~51 GB reservation).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use duet_proto::codec::{self, encode_message, Protocol};
use duet_proto::pipe_tablet;
use duet_proto::rpc::{self, Decoded, Request};
use duet_proto::t;
use duet_proto::types::DataType;
use duet_proto::{pipe_body, tablet, tsblock};
use thrift::protocol::{
    TBinaryInputProtocol, TCompactInputProtocol, TFieldIdentifier, TListIdentifier, TMessageType,
    TOutputProtocol, TSerializable, TStructIdentifier, TType,
};

const PROTOCOLS: [Protocol; 2] = [Protocol::Binary, Protocol::Compact];

/// `insertTablet` whose argument's `measurements` list has the header `list_size` of `element`s and
/// nothing after it — the shape of the frame that aborted duetd before login.
fn insert_tablet_with_list(protocol: Protocol, element: TType, list_size: i32) -> Vec<u8> {
    encode_message(protocol, "insertTablet", TMessageType::Call, 1, |p| {
        p.write_field_begin(&TFieldIdentifier::new("req", TType::Struct, 1))?;
        p.write_struct_begin(&TStructIdentifier::new("TSInsertTabletReq"))?;
        p.write_field_begin(&TFieldIdentifier::new("sessionId", TType::I64, 1))?;
        p.write_i64(0)?;
        p.write_field_end()?;
        p.write_field_begin(&TFieldIdentifier::new("measurements", TType::List, 3))?;
        p.write_list_begin(&TListIdentifier::new(element, list_size))?;
        Ok(())
    })
    .unwrap()
}

fn expect_bad_arguments(payload: &[u8], needle: &str) {
    match rpc::decode_call(payload) {
        Ok(Decoded::BadArguments(header, message)) => {
            assert_eq!(header.name, "insertTablet");
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
        other => panic!("expected bad arguments, got {other:?}"),
    }
}

#[test]
fn a_list_claiming_two_billion_elements_is_an_error_not_a_reservation() {
    for protocol in PROTOCOLS {
        let payload = insert_tablet_with_list(protocol, TType::String, i32::MAX);
        expect_bad_arguments(&payload, "list of 2147483647 elements");
    }
    // The binary frame is the reported one: 58 bytes with its 4-byte length prefix... give or take the
    // method name; the shape (a list header claiming 2^31-1 strings and nothing after it) is what matters.
    let binary = insert_tablet_with_list(Protocol::Binary, TType::String, i32::MAX);
    assert!(binary.len() < 64, "{}", binary.len());
}

#[test]
fn negative_lengths_are_errors_in_both_protocols() {
    // A negative list size (binary; compact sizes are unsigned varints, so its extreme is 2^32-1).
    let payload = insert_tablet_with_list(Protocol::Binary, TType::I32, -1);
    expect_bad_arguments(&payload, "negative list size -1");
    let payload = encode_message(
        Protocol::Compact,
        "insertTablet",
        TMessageType::Call,
        1,
        |p| {
            p.write_field_begin(&TFieldIdentifier::new("req", TType::Struct, 1))?;
            p.write_struct_begin(&TStructIdentifier::new("r"))?;
            p.write_field_begin(&TFieldIdentifier::new("measurements", TType::List, 3))?;
            // 0xF8: "size follows" + string elements; then a varint of 2^32-1.
            p.write_byte(0xF8)?;
            for b in [0xff, 0xff, 0xff, 0xff, 0x0f] {
                p.write_byte(b)?;
            }
            Ok(())
        },
    )
    .unwrap();
    assert!(matches!(
        rpc::decode_call(&payload),
        Ok(Decoded::BadArguments(..))
    ));
    // Negative string lengths: the prefix path of the request (binary), and a string length of 2^32-1
    // (compact).
    for protocol in PROTOCOLS {
        let payload = encode_message(protocol, "insertTablet", TMessageType::Call, 1, |p| {
            p.write_field_begin(&TFieldIdentifier::new("req", TType::Struct, 1))?;
            p.write_struct_begin(&TStructIdentifier::new("r"))?;
            p.write_field_begin(&TFieldIdentifier::new("prefixPath", TType::String, 2))?;
            match protocol {
                Protocol::Binary => p.write_i32(-5)?,
                Protocol::Compact => {
                    for b in [0xff, 0xff, 0xff, 0xff, 0x0f] {
                        p.write_byte(b)?;
                    }
                }
            }
            Ok(())
        })
        .unwrap();
        let Ok(Decoded::BadArguments(_, message)) = rpc::decode_call(&payload) else {
            panic!("{protocol:?}: not refused");
        };
        assert!(
            message.contains("negative string or binary length -5")
                || message.contains("string or binary of 4294967295 bytes"),
            "{message}"
        );
    }
    // A negative method-name length in a non-strict binary header is not a call at all.
    assert!(rpc::decode_call(&[0x80, 0x01, 0x00, 0x01, 0xff, 0xff, 0xff, 0xfe]).is_err());
}

#[test]
fn collections_together_may_not_claim_more_elements_than_the_frame_has_bytes() {
    // An outer list of 100 lists, each claiming 400 bytes: each claim alone fits what is left, so
    // without the running total the generated code would reserve for all of them at once.
    for protocol in PROTOCOLS {
        let mut bytes = Vec::new();
        {
            let mut p = codec::output_protocol(protocol, &mut bytes);
            p.write_list_begin(&TListIdentifier::new(TType::List, 100))
                .unwrap();
            for _ in 0..100 {
                p.write_list_begin(&TListIdentifier::new(TType::I08, 400))
                    .unwrap();
            }
        }
        bytes.extend(std::iter::repeat_n(0u8, 400));
        let mut input = codec::input_protocol(protocol, &bytes);
        input.read_list_begin().unwrap();
        let mut opened = 0;
        let err = loop {
            match input.read_list_begin() {
                Ok(list) => {
                    assert_eq!(list.size, 400);
                    opened += 1;
                }
                Err(e) => break e,
            }
        };
        assert!(opened < 5, "{protocol:?}: {opened} lists opened");
        let err = duet_proto::input::describe(&err);
        assert!(err.contains("collections claim"), "{err}");
    }
}

/// A reply whose status nests `depth` sub-statuses, as a hostile server (or peer) could send it.
fn nested_status_reply(protocol: Protocol, depth: usize) -> Vec<u8> {
    encode_message(
        protocol,
        "executeStatementV2",
        TMessageType::Reply,
        1,
        |p| {
            p.write_field_begin(&TFieldIdentifier::new("success", TType::Struct, 0))?;
            for _ in 0..depth {
                p.write_struct_begin(&TStructIdentifier::new("TSStatus"))?;
                p.write_field_begin(&TFieldIdentifier::new("code", TType::I32, 1))?;
                p.write_i32(200)?;
                p.write_field_end()?;
                p.write_field_begin(&TFieldIdentifier::new("subStatus", TType::List, 3))?;
                p.write_list_begin(&TListIdentifier::new(TType::Struct, 1))?;
            }
            Ok(())
        },
    )
    .unwrap()
}

#[test]
fn nesting_past_the_limit_is_an_error_not_a_stack_overflow() {
    // On a 2 MiB stack, like a server thread's; 100,000 levels would overflow any stack.
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            for protocol in PROTOCOLS {
                let reply = nested_status_reply(protocol, 100_000);
                let err = rpc::decode_struct_reply::<t::TSStatus>(&reply).unwrap_err();
                assert!(err.to_string().contains("nested more than 64"), "{err}");
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Encodes one request in the given protocol.
type Encoder = Box<dyn Fn(Protocol) -> Vec<u8>>;

fn rich_requests() -> Vec<(&'static str, Encoder)> {
    let tablet = t::TSInsertTabletReq::new(
        7,
        "root.sg.d1".into(),
        vec!["s1".into(), "s2".into()],
        vec![1, 2, 3, 4],
        vec![0; 16],
        vec![1, 5],
        2,
        true,
        None,
        Some(vec![1, 1]),
        None,
        None,
        None,
    );
    let mut configuration = BTreeMap::new();
    configuration.insert("version".to_string(), "V_1_0".to_string());
    configuration.insert("sql_dialect".to_string(), "tree".to_string());
    let open = t::TSOpenSessionReq::new(
        t::TSProtocolVersion::IOTDB_SERVICE_PROTOCOL_V3,
        "UTC".into(),
        "root".into(),
        Some("pw".into()),
        Some(configuration),
    );
    let status = t::TSStatus::new(
        302,
        Some("multiple".to_string()),
        Some(vec![Box::new(t::TSStatus::new(
            507,
            Some("x".to_string()),
            None,
            None,
            Some(false),
            Some(vec![9, 9]),
        ))]),
        None,
        Some(true),
        None,
    );
    let mut index = BTreeMap::new();
    index.insert("root.sg.d1.s1".to_string(), 0);
    let resp = t::TSExecuteStatementResp::new(
        status,
        Some(-3),
        Some(vec!["Time".to_string(), "root.sg.d1.s1".to_string()]),
        None,
        Some(false),
        Some(vec!["INT64".to_string()]),
        None,
        None,
        Some(index),
        None,
        Some(vec![-1, 0, 1]),
        None,
        Some(vec![vec![1, 2, 3], vec![]]),
        Some(true),
        None,
        None,
        Some(vec![i32::MIN, -1, 0, i32::MAX]),
    );
    vec![
        (
            "tablet",
            Box::new(move |p| rpc::encode_struct_call(p, "insertTablet", 1, &tablet).unwrap()),
        ),
        (
            "open",
            Box::new(move |p| rpc::encode_struct_call(p, "openSession", 1, &open).unwrap()),
        ),
        (
            "resp",
            Box::new(move |p| rpc::encode_struct_call(p, "x", 0, &resp).unwrap()),
        ),
    ]
}

/// Decodes the argument struct (field 0 or 1) of `payload` with the `thrift` crate's own protocols.
fn decode_with_thrift<T: TSerializable>(protocol: Protocol, payload: &[u8]) -> T {
    let mut binary;
    let mut compact;
    let prot: &mut dyn thrift::protocol::TInputProtocol = match protocol {
        Protocol::Binary => {
            binary = TBinaryInputProtocol::new(payload, false);
            &mut binary
        }
        Protocol::Compact => {
            compact = TCompactInputProtocol::new(payload);
            &mut compact
        }
    };
    prot.read_message_begin().unwrap();
    prot.read_struct_begin().unwrap();
    prot.read_field_begin().unwrap();
    T::read_from_in_protocol(prot).unwrap()
}

#[test]
fn well_formed_messages_decode_exactly_as_the_thrift_crate_reads_them() {
    let requests = rich_requests();
    for protocol in PROTOCOLS {
        for (name, encode) in &requests {
            let payload = encode(protocol);
            match *name {
                "tablet" => {
                    let Ok(Decoded::Call(_, Request::InsertTablet(ours))) =
                        rpc::decode_call(&payload)
                    else {
                        panic!("{protocol:?} {name}")
                    };
                    assert_eq!(
                        ours,
                        decode_with_thrift::<t::TSInsertTabletReq>(protocol, &payload)
                    );
                }
                "open" => {
                    let Ok(Decoded::Call(_, Request::OpenSession(ours))) =
                        rpc::decode_call(&payload)
                    else {
                        panic!("{protocol:?} {name}")
                    };
                    assert_eq!(
                        ours,
                        decode_with_thrift::<t::TSOpenSessionReq>(protocol, &payload)
                    );
                }
                _ => {
                    let mut reply = payload.clone();
                    // Turn the call into a reply: the message type is byte 3 (binary) or the top bits of
                    // byte 1 (compact).
                    match protocol {
                        Protocol::Binary => reply[3] = 2,
                        Protocol::Compact => reply[1] = (2 << 5) | 1,
                    }
                    let ours: t::TSExecuteStatementResp = rpc::decode_struct_reply(&reply).unwrap();
                    assert_eq!(ours, decode_with_thrift(protocol, &payload));
                }
            }
            // Every truncation is an error, never a panic.
            for cut in 0..payload.len() {
                let _ = rpc::decode_call(&payload[..cut]);
            }
        }
    }
}

#[test]
fn tablet_and_record_counts_beyond_the_input_are_errors() {
    // A tablet of 2^31 rows of TEXT with 8 bytes of values: was a 48 GB reservation.
    assert!(tablet::decode_tablet_values(&[0; 8], &[DataType::Text], 1 << 31).is_err());
    assert!(tablet::decode_tablet_values(&[0; 8], &[DataType::Int64], usize::MAX).is_err());
    assert!(tablet::decode_timestamps(&[0; 8], usize::MAX).is_err());
    assert!(tablet::decode_record(&[1, 0, 0, 0, 7], 1 << 40).is_err());
    // Negative binary lengths inside values and records.
    assert!(tablet::decode_tablet_values(&[0xff, 0xff, 0xff, 0xfe], &[DataType::Text], 1).is_err());
    assert!(tablet::decode_record(&[5, 0x80, 0, 0, 0], 1).is_err());
}

#[test]
fn tsblock_counts_beyond_the_input_are_errors() {
    // 2^31-1 columns; then 1 column of 2^31-1 positions; then a negative value length.
    assert!(tsblock::decode(&[0x7f, 0xff, 0xff, 0xff, 1, 0], None).is_err());
    let mut block = vec![0, 0, 0, 1, 5, 0x7f, 0xff, 0xff, 0xff, 2, 3, 0];
    block.extend_from_slice(&[0; 64]);
    assert!(tsblock::decode(&block, None).is_err());
    let block = [
        &[0, 0, 0, 1, 5, 0, 0, 0, 1, 2, 3][..],
        &[0, 0, 0, 0, 0, 0, 0, 0, 1],
        &[0, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat();
    assert!(tsblock::decode(&block, None).is_err());
    // A null bitmap of all nulls may stand for many rows, but no more than eight per bitmap byte.
    let mut block = vec![0, 0, 0, 1, 5, 0x00, 0x10, 0, 0, 2, 3, 0];
    block.extend_from_slice(&[0; 16]);
    assert!(tsblock::decode(&block, None).is_err());
}

#[test]
fn pipe_bodies_with_hostile_counts_are_errors() {
    let mut map = Vec::new();
    map.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(pipe_body::decode_map(&map).is_err());
    assert!(pipe_body::decode_map(&[0xff, 0xff, 0xff, 0xff]).is_err());
    // Tablet batch: 2^31-1 tablets; then one tablet of 2^31-1 rows.
    let mut body = vec![0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff];
    assert!(pipe_tablet::decode_tablets(13, &body).is_err());
    body = Vec::new();
    pipe_body::put_string(&mut body, Some("root.sg.d1"));
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    body.extend_from_slice(&[0; 32]);
    assert!(pipe_tablet::decode_tablets(3, &body).is_err());
}

/// Many columns whose one-byte bitmaps each claim a null mark per row: before the values they promise
/// were checked, a few bytes a column reserved `rows` marks each (quadratic in the body's size).
#[test]
fn tablet_null_marks_are_bounded_by_the_values_that_must_follow() {
    let rows: i32 = 4096;
    let columns: i32 = 4096;
    let mut body = Vec::new();
    pipe_body::put_string(&mut body, Some("root.sg.d1"));
    body.extend_from_slice(&rows.to_be_bytes());
    body.push(1);
    body.extend_from_slice(&columns.to_be_bytes());
    for i in 0..columns {
        body.push(1);
        pipe_body::put_string(&mut body, Some(&format!("s{i}")));
        body.extend_from_slice(&[DataType::Boolean.code(), 0, 0, 0, 0, 0, 0, 1]);
    }
    body.push(1);
    body.extend(std::iter::repeat_n(0u8, rows as usize * 8));
    body.push(1);
    for _ in 0..columns {
        body.extend_from_slice(&[1, 0, 0, 0x10, 0, 0, 0, 0, 1, 1]);
    }
    let err = pipe_tablet::decode_tablets(3, &body).unwrap_err();
    assert!(err.to_string().contains("values"), "{err}");
}
