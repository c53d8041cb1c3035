//! Fuzzes the control socket protocol on both ends: the daemon's request line decoder
//! (`control::decode_request`, then `config::from_document` for a reload's document, as
//! `ConfigService` does) and the CLI's reading of a reply line. Nothing may panic, whatever
//! arrives on the socket; the daemon answers a line that is not UTF-8 with an error, so
//! such input is decoded lossily here to still reach the JSON decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketses::config;
use pocketses::control::{decode_request, encode_line, Reply, Request};

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    match decode_request(&line) {
        Ok(request) => {
            // What decodes re-encodes to a line that decodes to the same command. Not to an
            // equal request: serde_json (without `float_roundtrip`) may read a float in a
            // document back one ulp off, which a fuzz run found (docs/security.md).
            let again = encode_line(&request);
            match (decode_request(&again), &request) {
                (Ok(Request::State), Request::State) => {}
                (Ok(Request::Reload { config: a }), Request::Reload { config: b }) => {
                    assert_eq!(a.is_some(), b.is_some(), "reload round trip");
                }
                (
                    Ok(Request::Source { snapd_control: a }),
                    Request::Source { snapd_control: b },
                ) => {
                    assert_eq!(a, *b, "source round trip");
                }
                (again, request) => panic!("round trip: {request:?} became {again:?}"),
            }
            if let Request::Reload { config: Some(doc) } = &request {
                match config::from_document(doc) {
                    Ok(loaded) => {
                        let _ = loaded.config.value_of("interval");
                    }
                    Err(problems) => {
                        for p in problems {
                            let _ = p.to_string();
                        }
                    }
                }
                for p in config::validate(doc) {
                    let _ = p.to_string();
                }
                let _ = config::flatten(doc);
                let _ = config::missing_defaults(doc);
                let _ = config::migrate(doc);
            }
        }
        Err(message) => assert!(message.starts_with("cannot decode control request: ")),
    }
    if let Ok(reply) = serde_json::from_str::<Reply>(line.trim()) {
        let _ = encode_line(&reply);
    }
});
