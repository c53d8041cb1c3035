//! Fuzzes what a device reads from a fleet server: a bundle (cpio newc, `sw-description`,
//! its signature, the files), verified against a fixed trusted key and streamed out, and the
//! DDI replies (controller base, deploymentBase, cancelAction). Nothing may panic, and a
//! bundle that passes must have produced every file it lists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketses::fleet::{bundle, ddi, libconfig};

fuzz_target!(|data: &[u8]| {
    // Any valid key: the fuzzer cannot forge a signature, so this reaches the refusals; the
    // stream after a signature is covered by src/fleet/bundle's property tests.
    let Ok(key) = bundle::parse_public_key("b/coDY16/aQJVMkNmZyHnywHun1vDWkREqqt5vm0nMg=") else {
        return;
    };
    let trusted = [key];
    if let Ok(head) = bundle::open(data) {
        let _ = head.description_unverified();
        if let Ok(mut verified) = head.verify(&trusted) {
            let listed = verified.description.files.len();
            let mut seen = 0;
            loop {
                match verified.next_file() {
                    Ok(Some(entry)) => {
                        if verified.copy(&entry, &mut std::io::sink()).is_err() {
                            break;
                        }
                        seen += 1;
                    }
                    Ok(None) => {
                        assert_eq!(seen, listed, "a verified bundle produced every listed file");
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }
    let _ = bundle::parse_description(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = libconfig::parse(text);
        let _ = bundle::parse_public_keys(text);
    }
    let _ = ddi::parse_base(data);
    let _ = ddi::parse_deployment(data);
    let _ = ddi::parse_cancel(data);
});
