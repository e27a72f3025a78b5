//! Any octets into the message decoder: it must never panic, whatever it
//! accepts must re-encode, and decoding that encoding must give the same
//! message back (and encode to the same octets again), for a 4-octet-AS
//! peer and for a 2-octet one (RFC 6793: AS_TRANS plus AS4_PATH and
//! AS4_AGGREGATOR on the wire, merged back when read); and a message read
//! from a 4-octet speaker, written for a 2-octet one, reads back the same.
#![no_main]

use bgp::wire::update::flag;
use bgp::wire::{AsWidth, DecodeOptions, Message, PathAttribute, frame_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data);
    for (opts, width) in [
        (DecodeOptions::default(), AsWidth::Four),
        (
            DecodeOptions {
                external_peer: true,
                as_width: AsWidth::Four,
            },
            AsWidth::Four,
        ),
        (
            DecodeOptions {
                external_peer: true,
                as_width: AsWidth::Two,
            },
            AsWidth::Two,
        ),
    ] {
        round_trip(data, opts, width);
    }
    // What a 4-octet-AS speaker decoded, written for a 2-octet one (AS_TRANS
    // and the AS4 attributes) and read back as that peer reads it, is the
    // same message: RFC 6793 loses nothing on the way.
    let four = DecodeOptions {
        external_peer: true,
        as_width: AsWidth::Four,
    };
    if let Ok(first) = Message::decode_with(data, four)
        && let Ok(bytes) = first.encode_with(AsWidth::Two)
    {
        let two = DecodeOptions {
            as_width: AsWidth::Two,
            ..four
        };
        let second = Message::decode_with(&bytes, two).unwrap_or_else(|e| {
            panic!("encoded for a 2-octet peer, does not decode as one: {e}\n{first:?}")
        });
        assert_eq!(
            normalised(first),
            normalised(second),
            "a 4-octet speaker's message changed through a 2-octet peer"
        );
    }
});

fn round_trip(data: &[u8], opts: DecodeOptions, width: AsWidth) {
    let Ok(first) = Message::decode_with(data, opts) else {
        return;
    };
    // Too long once encoded is the only refusal a decoded message may
    // meet (a 2-octet peer's UPDATE grows by its AS4 attributes, an OPEN
    // by its capabilities' parameter headers).
    let bytes = match first.encode_with(width) {
        Ok(b) => b,
        Err(bgp::wire::EncodeError::TooLong(_)) => return,
        // The encoder gives each capability its own optional parameter
        // (RFC 5492 §4): a peer's OPEN that packed many into one can be
        // too long to write so (RFC 9072 would be needed). Only our own
        // OPEN is ever encoded; a peer's is not sent back.
        Err(bgp::wire::EncodeError::FieldTooLong("optional parameters length"))
            if matches!(first, Message::Open(_)) =>
        {
            return;
        }
        Err(e) => panic!("decoded message does not encode ({width:?}): {e}\n{first:?}"),
    };
    let second = Message::decode_with(&bytes, opts).unwrap_or_else(|e| {
        panic!("re-encoded message does not decode ({width:?}): {e}\n{first:?}")
    });
    if let Message::Update(u) = &second {
        // What we write is clean: nothing in it for RFC 7606 to repair.
        assert!(
            u.issues.is_empty(),
            "re-encoded UPDATE has issues ({width:?}): {u:?}\nfirst: {first:?}"
        );
    }
    assert_eq!(
        normalised(first.clone()),
        normalised(second.clone()),
        "decode(encode(m)) != m ({width:?})"
    );
    assert_eq!(
        second.encode_with(width).ok().as_deref(),
        Some(bytes.as_slice()),
        "encoding is not a fixpoint ({width:?})"
    );
}

/// What may legitimately differ between a decoded message and the decoding
/// of its re-encoding, made equal; everything else must be `==`:
/// * `Update::issues` record what RFC 7606 repaired in the octets received
///   (an attribute discarded, announcements turned into withdrawals); the
///   repair itself is in the message, the encoder ignores the record, so
///   the second decoding has none (checked above).
/// * An unrecognised attribute's flags keep whatever low-order bits the
///   sender set; they are unused (RFC 4271 §4.3: zero when sent, ignored
///   when received), and the encoder writes only Optional, Transitive and
///   Partial.
fn normalised(m: Message) -> Message {
    match m {
        Message::Update(mut u) => {
            u.issues.clear();
            for a in &mut u.attributes {
                if let PathAttribute::Unknown { flags, .. } = a {
                    *flags &= flag::OPTIONAL | flag::TRANSITIVE | flag::PARTIAL;
                }
            }
            Message::Update(u)
        }
        m => m,
    }
}
