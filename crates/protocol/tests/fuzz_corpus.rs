//! Replays the committed fuzz corpus (`fuzz/corpus/decode_frames`, grown by
//! `cargo fuzz run decode_frames`) through the decoder on the stable
//! toolchain, so every input the fuzzer kept is checked in CI: no panic,
//! and whatever decodes survives encode → decode unchanged.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use switchboard_protocol::{decode_client_frame, decode_server_frame, encode};

#[test]
fn every_corpus_input_decodes_or_errors_and_round_trips() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/decode_frames");
    let mut inputs = 0;
    let mut decoded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        inputs += 1;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        if let Ok(f) = decode_server_frame(text) {
            decoded += 1;
            let again = decode_server_frame(&encode(&f))
                .unwrap_or_else(|e| panic!("{}: re-encoded server frame: {e}", path.display()));
            assert_eq!(f, again, "{}", path.display());
        }
        if let Ok(f) = decode_client_frame(text) {
            decoded += 1;
            let again = decode_client_frame(&encode(&f))
                .unwrap_or_else(|e| panic!("{}: re-encoded client frame: {e}", path.display()));
            assert_eq!(f, again, "{}", path.display());
        }
    }
    assert!(inputs >= 10, "the corpus is committed ({inputs} inputs)");
    assert!(
        decoded >= 5,
        "the corpus holds valid frames too ({decoded})"
    );
}
