//! Every single-byte change to a real signed assertion (snapd's built-in `generic-classic`
//! model, signed by Canonical's `generic` models key) is rejected, at every position.
//!
//! Every other byte value is tried at every position, except in the base64 text of the RSA
//! value itself (about 680 characters), where each character gets every non-base64 byte and
//! the six base64 characters one bit away (every bit of the value flipped): trying all 64
//! base64 characters there would cost ~45,000 RSA verifications, minutes in a debug build.
//!
//! The one kind of change that cannot be caught is checked precisely: bytes of the issuer key
//! id in the signature's unhashed area are not covered by the signature, and snapd does not
//! compare them with the key either (real Canonical issuers do not match it).

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use pocketses::assertion::account::AccountKey;
use pocketses::assertion::decode;
use pocketses::assertion::time::Timestamp;
use pocketses::assertion::trust::{Database, GENERIC_CLASSIC_MODEL, GENERIC_MODELS_ACCOUNT_KEY};
use pocketses::assertion::verify::{decode_signature, verify};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Byte positions of the assertion text whose base64 character encodes only RSA-value bits.
fn rsa_value_positions() -> std::collections::BTreeSet<usize> {
    let a = decode(GENERIC_CLASSIC_MODEL).unwrap();
    let packet = decode_signature(a.signature()).unwrap();
    // raw = 0x01 || packet; the value is the packet's last bytes.
    let raw_len = 1 + packet.serialize().len();
    let value_start = raw_len - packet.signature.len();
    let sig_start = a.content().len() + 2;
    let mut out = std::collections::BTreeSet::new();
    let mut char_index = 0usize;
    for (i, c) in a.signature().iter().enumerate() {
        if *c == b'\n' || *c == b'=' {
            continue;
        }
        if char_index * 6 / 8 >= value_start {
            out.insert(sig_start + i);
        }
        char_index += 1;
    }
    out
}

/// The values to try at a position holding `orig`.
fn values(orig: u8, in_rsa_value: bool) -> Vec<u8> {
    if !in_rsa_value {
        return (0..=255u8).filter(|v| *v != orig).collect();
    }
    let index = B64.iter().position(|c| *c == orig).unwrap();
    let mut out: Vec<u8> = (0..=255u8).filter(|v| !B64.contains(v)).collect();
    out.extend((0..6).map(|bit| B64[index ^ (1 << bit)]));
    out
}

/// Tries the values at positions `range`; returns (tried, accepted issuer-only changes).
fn mutate_range(range: std::ops::Range<usize>) -> (usize, usize) {
    let rsa_positions = rsa_value_positions();
    let db = Database::builtin();
    let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let original = decode(GENERIC_CLASSIC_MODEL).unwrap();
    let original_packet = decode_signature(original.signature()).unwrap();
    // Checking each variant with the signing key directly keeps this fast enough in debug
    // builds; the full database check (key lookup by id, authority, validity) runs on every
    // variant the key accepts.
    let key = AccountKey::from_assertion(&decode(GENERIC_MODELS_ACCOUNT_KEY).unwrap())
        .unwrap()
        .public_key;
    let mut bytes = GENERIC_CLASSIC_MODEL.to_vec();
    let (mut n_tried, mut n_issuer_only) = (0, 0);
    for pos in range {
        let orig = bytes[pos];
        for value in values(orig, rsa_positions.contains(&pos)) {
            bytes[pos] = value;
            n_tried += 1;
            let Ok(mutated) = decode(&bytes) else { continue };
            if verify(&mutated, &key).is_err() || db.check(&mutated, now).is_err() {
                continue;
            }
            // Accepted: it must be the same content and signature but for the issuer id.
            assert_eq!(
                mutated.content(),
                original.content(),
                "accepted a content change at byte {pos} = {value:#04x}"
            );
            let packet = decode_signature(mutated.signature()).unwrap();
            assert_eq!(packet.hashed, original_packet.hashed, "byte {pos} = {value:#04x}");
            assert_eq!(packet.signature, original_packet.signature, "byte {pos} = {value:#04x}");
            assert_eq!(
                packet.hash_prefix, original_packet.hash_prefix,
                "byte {pos} = {value:#04x}"
            );
            assert_ne!(packet.issuers, original_packet.issuers, "byte {pos} = {value:#04x}");
            n_issuer_only += 1;
        }
        bytes[pos] = orig;
    }
    (n_tried, n_issuer_only)
}

#[test]
fn every_single_byte_change_is_rejected() {
    let original = decode(GENERIC_CLASSIC_MODEL).unwrap();
    Database::builtin()
        .check(&original, Timestamp::parse("2026-01-01T00:00:00Z").unwrap())
        .expect("the real model verifies");
    assert!(
        !decode_signature(original.signature()).unwrap().issuers.is_empty(),
        "the store's signature carries an issuer"
    );

    let len = GENERIC_CLASSIC_MODEL.len();
    let n_threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
    let chunk = len.div_ceil(n_threads);
    let results: Vec<(usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n_threads)
            .map(|i| s.spawn(move || mutate_range(i * chunk..((i + 1) * chunk).min(len))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let n_tried: usize = results.iter().map(|r| r.0).sum();
    let n_issuer_only: usize = results.iter().map(|r| r.1).sum();
    let n_rsa = rsa_value_positions().len();
    assert!(n_rsa > 600, "{n_rsa}");
    assert_eq!(n_tried, (len - n_rsa) * 255 + n_rsa * (256 - 64 + 6));
    // 8 issuer bytes span 11 base64 characters: only changes confined to them can pass.
    assert!(n_issuer_only > 0 && n_issuer_only < 11 * 64, "{n_issuer_only} accepted changes");
    eprintln!("{n_tried} single-byte changes tried, {n_issuer_only} accepted (issuer key id only)");
}
