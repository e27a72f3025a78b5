//! Any octets into the message decoder: must never panic, and whatever it
//! accepts must re-encode into something it accepts again.
#![no_main]

use bgp::wire::{AsWidth, DecodeOptions, Message, frame_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data);
    let _ = Message::decode_with(
        data,
        DecodeOptions {
            external_peer: true,
            ..DecodeOptions::default()
        },
    );
    // A 2-octet-AS peer's UPDATEs (RFC 6793 AS4_PATH merge), re-encoded
    // for such a peer.
    let two = DecodeOptions {
        external_peer: true,
        as_width: AsWidth::Two,
    };
    if let Ok(m) = Message::decode_with(data, two)
        && let Ok(bytes) = m.encode_with(AsWidth::Two)
    {
        Message::decode_with(&bytes, two).expect("re-encoded message must decode");
    }
    if let Ok(m) = Message::decode(data)
        && let Ok(bytes) = m.encode()
    {
        Message::decode(&bytes).expect("re-encoded message must decode");
    }
});
