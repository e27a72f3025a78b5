//! Codec properties over many deterministic inputs: encode/decode round
//! trips of valid packets, and no panic on random, mutated or truncated
//! octets (`bfd/fuzz` does the same with coverage guidance).

use bfd::wire::{ControlPacket, DecodeError, Diag, PACKET_LEN, State};
use testkit::Rng;

/// A random packet that passes every stateless check.
fn valid(r: &mut Rng) -> ControlPacket {
    let state = State::from_bits(r.below(4) as u8);
    let your_disc = if matches!(state, State::Down | State::AdminDown) && r.bool() {
        0
    } else {
        r.u32().max(1)
    };
    ControlPacket {
        version: 1,
        diag: Diag::from_code(r.below(32) as u8),
        state,
        poll: r.bool(),
        fin: r.bool(),
        cpi: r.bool(),
        auth: false,
        demand: r.bool(),
        multipoint: false,
        detect_mult: r.below(255) as u8 + 1,
        my_disc: r.u32().max(1),
        your_disc,
        desired_min_tx_us: r.u32(),
        required_min_rx_us: r.u32(),
        required_min_echo_rx_us: r.u32(),
    }
}

#[test]
fn round_trips() {
    let mut r = Rng::new(0x1207_6bfd);
    for _ in 0..100_000 {
        let p = valid(&mut r);
        let b = p.encode();
        assert_eq!(b.len(), PACKET_LEN);
        assert_eq!(b[3], 24, "Length");
        assert_eq!(ControlPacket::decode(&b), Ok(p));
        // Trailing octets past Length are ignored.
        let mut longer = b.to_vec();
        longer.extend_from_slice(&[0u8; 7]);
        assert_eq!(ControlPacket::decode(&longer), Ok(p));
    }
}

#[test]
fn decoder_never_panics_on_random_mutated_or_truncated_input() {
    let mut r = Rng::new(0xdead_beef_5880);
    let (mut ok, mut err) = (0u32, 0u32);
    let mut tally = |res: Result<ControlPacket, DecodeError>| match res {
        Ok(p) => {
            // Whatever decodes passes the checks and re-encodes the same
            // (encode writes no authentication section).
            assert!(p.check().is_ok());
            if !p.auth {
                assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
            }
            ok += 1;
        }
        Err(_) => err += 1,
    };
    for i in 0..200_000 {
        let input: Vec<u8> = match i % 3 {
            // Pure noise of any length up to 64.
            0 => (0..r.below(65)).map(|_| r.next_u64() as u8).collect(),
            // A valid packet with a few bits flipped or octets replaced.
            1 => {
                let mut b = valid(&mut r).encode().to_vec();
                for _ in 0..1 + r.below(3) {
                    let j = r.below(b.len() as u64) as usize;
                    if r.bool() {
                        b[j] ^= 1 << r.below(8);
                    } else {
                        b[j] = r.next_u64() as u8;
                    }
                }
                b
            }
            // A valid packet cut short (or an auth packet with its section).
            _ => {
                let mut b = valid(&mut r).encode().to_vec();
                if r.bool() {
                    b[1] |= 0x04;
                    b[3] = 24 + r.below(40) as u8;
                    b.extend((0..r.below(40)).map(|_| r.next_u64() as u8));
                }
                b.truncate(r.below(b.len() as u64 + 1) as usize);
                b
            }
        };
        tally(ControlPacket::decode(&input));
    }
    // Every prefix of a valid packet shorter than 24 octets is Truncated.
    let b = valid(&mut r).encode();
    for n in 0..PACKET_LEN {
        assert_eq!(
            ControlPacket::decode(&b[..n]),
            Err(DecodeError::Truncated { len: n })
        );
    }
    assert!(ok > 10_000 && err > 10_000, "ok {ok} err {err}");
}
