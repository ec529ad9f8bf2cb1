//! Feeds arbitrary bytes to [`Down::decode`], the parser the page runs on every frame the relay sends.
//!
//! Decoding must never panic, and because the codec is strict (exact lengths, known tags, no slack), a frame
//! it accepts must re-encode to exactly the same bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use soket_protocol::Down;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    if let Ok(msg) = Down::decode(&frame) {
        assert_eq!(msg.encode(), frame, "{msg:?} re-encodes differently");
    }
});
