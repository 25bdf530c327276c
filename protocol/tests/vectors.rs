//! The committed vectors in `protocol/vectors/` are what the code encodes and decodes, and what
//! `PROTOCOL.md` shows: docs, vectors and code cannot drift apart.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod support {
    pub mod vectors;
}

use std::collections::BTreeSet;
use std::path::PathBuf;

use game_core::arena::{Arena, Direction};
use protocol::{ClientMessage, MAX_CLIENT_FRAME_BYTES, decode_client, decode_server};
use support::vectors::{self, Message};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn index() -> serde_json::Value {
    let text = std::fs::read_to_string(dir().join("vectors.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_vector_is_committed_and_described() {
    let index = index();
    let entries = index["vectors"].as_array().unwrap();
    let described: BTreeSet<&str> = entries
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let defined: BTreeSet<&str> = vectors::all().iter().map(|v| v.name).collect();
    assert_eq!(described, defined);
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".msgpack"))
        .collect();
    let expected: BTreeSet<String> = defined.iter().map(|n| format!("{n}.msgpack")).collect();
    assert_eq!(on_disk, expected, "stray or missing .msgpack files");

    for vector in vectors::all() {
        let entry = entries.iter().find(|e| e["name"] == vector.name).unwrap();
        let bytes = std::fs::read(dir().join(entry["file"].as_str().unwrap())).unwrap();
        assert_eq!(
            bytes,
            vector.bytes(),
            "{}: the code encodes other bytes",
            vector.name
        );
        assert_eq!(entry["hex"], vectors::hex(&bytes), "{}", vector.name);
        assert_eq!(
            entry["reading"],
            vectors::reading(&bytes),
            "{}",
            vector.name
        );
        assert_eq!(entry["direction"], vector.direction(), "{}", vector.name);
        assert_eq!(entry["description"], vector.description, "{}", vector.name);
        assert_eq!(
            entry["error_code"].as_str(),
            vector.error_code().map(|c| c.as_str()),
            "{}",
            vector.name
        );
    }
}

#[test]
fn every_committed_vector_decodes_to_its_documented_value() {
    for vector in vectors::all() {
        let bytes = std::fs::read(dir().join(format!("{}.msgpack", vector.name))).unwrap();
        match &vector.message {
            Message::Client(expected) => {
                let decoded = decode_client::<Arena>(&bytes, MAX_CLIENT_FRAME_BYTES).unwrap();
                let expected = match expected.clone() {
                    ClientMessage::Input { seq, input } => ClientMessage::Input {
                        seq,
                        input: Direction::try_from(input).unwrap(),
                    },
                    ClientMessage::Ping { id } => ClientMessage::Ping { id },
                    ClientMessage::Chat { text } => ClientMessage::Chat { text },
                    ClientMessage::Leave => ClientMessage::Leave,
                };
                assert_eq!(decoded, expected, "{}", vector.name);
            }
            Message::InvalidClient(_, code) => {
                let err = decode_client::<Arena>(&bytes, MAX_CLIENT_FRAME_BYTES).unwrap_err();
                assert_eq!(err.code(), *code, "{}: {err}", vector.name);
            }
            Message::Server(expected) => {
                let decoded = decode_server(&bytes).unwrap();
                assert_eq!(&decoded, expected, "{}", vector.name);
                assert_eq!(
                    decoded.encode(),
                    bytes,
                    "{}: re-encoding differs",
                    vector.name
                );
            }
        }
    }
}

#[test]
fn protocol_md_shows_every_vector() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../PROTOCOL.md")).unwrap();
    let squashed: String = doc.split_whitespace().collect();
    for vector in vectors::all() {
        let bytes = vector.bytes();
        let hex: String = vectors::hex(&bytes).split_whitespace().collect();
        assert!(
            squashed.contains(&hex),
            "PROTOCOL.md lacks the hex of {}",
            vector.name
        );
        let reading: String = vectors::reading(&bytes).split_whitespace().collect();
        assert!(
            squashed.contains(&reading),
            "PROTOCOL.md lacks the reading of {}",
            vector.name
        );
    }
}
