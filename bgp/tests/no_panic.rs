//! The decoder must return Ok or Err on any input, never panic. This runs
//! ~100k deterministic inputs in the normal test run; `bgp/fuzz` does the
//! same with coverage guidance.

mod generate;

use bgp::wire::{AsWidth, DecodeOptions, Message, frame_len};
use generate::Rng;

fn mutate(r: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + r.below(4) {
        if b.is_empty() {
            b.push(r.u8());
            continue;
        }
        let i = r.below(b.len());
        match r.below(6) {
            0 => b[i] ^= 1 << r.below(8),
            1 => b[i] = r.u8(),
            2 => b[i] = [0, 1, 0x7f, 0x80, 0xff, 16, 32, 128][r.below(8)],
            3 => {
                b.truncate(i);
            }
            4 => {
                let n = r.below(8);
                let junk = r.bytes(n);
                b.splice(i..i, junk);
            }
            _ => {
                b.remove(i);
            }
        }
    }
    // Keep the header plausible half the time so the body parsers are
    // reached rather than stopping at the marker or length check.
    if b.len() >= 19 && r.bool() {
        b[..16].fill(0xff);
        let len = (b.len().min(4096)) as u16;
        b[16..18].copy_from_slice(&len.to_be_bytes());
    }
    b
}

#[test]
fn decoder_never_panics_on_100k_inputs() {
    let mut r = Rng::new(0xb69_12076);
    let seeds: Vec<Vec<u8>> = (0..500)
        .filter_map(|_| generate::message(&mut r).encode().ok())
        .collect();
    let ext = DecodeOptions {
        external_peer: true,
        ..DecodeOptions::default()
    };
    let two = DecodeOptions {
        external_peer: true,
        as_width: AsWidth::Two,
    };
    let (mut ok, mut err) = (0u32, 0u32);
    for i in 0..100_000 {
        let input = if i % 10 == 0 {
            let n = r.below(64);
            let mut b = r.bytes(n);
            if b.len() >= 19 {
                b[..16].fill(0xff);
            }
            b
        } else {
            let seed = seeds[r.below(seeds.len())].clone();
            mutate(&mut r, seed)
        };
        let _ = frame_len(&input);
        match Message::decode(&input) {
            Ok(m) => {
                ok += 1;
                // Anything we accept must re-encode and decode to itself.
                if let Ok(b) = m.encode() {
                    let again = Message::decode(&b).expect("re-encoded message decodes");
                    if let (Message::Update(a), Message::Update(b)) = (&again, &m) {
                        assert_eq!(a.withdrawn, b.withdrawn);
                        assert_eq!(a.nlri, b.nlri);
                    }
                }
            }
            Err(_) => err += 1,
        }
        let _ = Message::decode_with(&input, ext);
        // A 2-octet-AS peer's view (RFC 6793): the AS4 merge must not
        // panic either, and what it accepts re-encodes for such a peer.
        if let Ok(m) = Message::decode_with(&input, two)
            && let Ok(b) = m.encode_with(AsWidth::Two)
        {
            Message::decode_with(&b, two).expect("re-encoded for a 2-octet peer, decodes");
        }
    }
    // Both outcomes are exercised, not just the header check.
    assert!(ok > 1_000 && err > 10_000, "ok={ok} err={err}");
}
