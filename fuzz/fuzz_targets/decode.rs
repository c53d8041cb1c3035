//! Fuzzes the assertion decoders: they must never panic, whatever the bytes, and whatever
//! decodes must encode back to the same bytes and survive validation and verification.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketses::assertion::{decode, decode_stream, encode, model, trust, verify};

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = decode(data) {
        assert_eq!(encode(&a), data, "decode/encode round trip");
        let _ = model::validate(a.headers());
        let _ = verify::decode_signature(a.signature());
        let now = pocketses::assertion::time::Timestamp::from_unix(1_767_225_600);
        let _ = trust::Database::builtin().check(&a, now);
    }
    if let Ok(all) = decode_stream(data) {
        for a in &all {
            assert!(a.content().len() <= pocketses::assertion::parse::MAX_HEADERS_SIZE + pocketses::assertion::parse::MAX_BODY_SIZE + 2);
        }
    }
    let _ = pocketses::assertion::parse::parse_headers(data);
    let _ = pocketses::assertion::openpgp::PublicKey::decode(data);
});
