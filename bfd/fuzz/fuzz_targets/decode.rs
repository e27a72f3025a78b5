//! Any octets into the Control packet decoder: must never panic, and
//! whatever it accepts (without an authentication section) must re-encode
//! into the same packet.
#![no_main]

use bfd::wire::ControlPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ControlPacket::decode(data) {
        assert!(p.check().is_ok());
        if !p.auth {
            assert_eq!(ControlPacket::decode(&p.encode()), Ok(p));
        }
    }
});
