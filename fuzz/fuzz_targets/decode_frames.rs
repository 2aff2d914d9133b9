//! Any bytes given to the protocol decoder: it returns a frame or an
//! error, never panics; and a decoded frame survives encode → decode
//! unchanged (nothing the decoder accepts is lost or altered on re-send).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::{decode_client_frame, decode_server_frame, encode};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = decode_server_frame(text) {
        let again = decode_server_frame(&encode(&f)).expect("re-encoded server frame decodes");
        assert_eq!(f, again);
    }
    if let Ok(f) = decode_client_frame(text) {
        let again = decode_client_frame(&encode(&f)).expect("re-encoded client frame decodes");
        assert_eq!(f, again);
    }
});
