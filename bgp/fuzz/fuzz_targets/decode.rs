//! Any octets into the message decoder: must never panic, and whatever it
//! accepts must re-encode into something it accepts again.
#![no_main]

use bgp::wire::{DecodeOptions, Message, frame_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data);
    let _ = Message::decode_with(
        data,
        DecodeOptions {
            external_peer: true,
        },
    );
    if let Ok(m) = Message::decode(data)
        && let Ok(bytes) = m.encode()
    {
        Message::decode(&bytes).expect("re-encoded message must decode");
    }
});
