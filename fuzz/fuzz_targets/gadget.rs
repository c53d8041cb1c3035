//! Fuzzes the `gadget.yaml` decoder and the layout rules that run on what it accepts: whatever
//! the text, `gadget::parse` returns a value or an error, and `check_compatible` and the offset
//! helpers never panic (overflow included: cargo-fuzz builds with overflow checks on).
//!
//! Input: the first byte picks the ruleset; the rest is one gadget.yaml, or two separated by a
//! line `---8<---` (current, then new) to drive `check_compatible` across two layouts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocketses::gadget::{self, check_compatible, Info, Ruleset};

const SPLIT: &str = "\n---8<---\n";

fn exercise(info: &Info) {
    for volume in info.volumes.values() {
        for (index, structure) in volume.structures.iter().enumerate() {
            let _ = (volume.min_offset(index), volume.max_offset(index));
            let _ = (structure.has_filesystem(volume), structure.max_size(volume));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let ruleset = match pick % 3 {
        0 => Ruleset::Uc20,
        1 => Ruleset::Uc16,
        _ => Ruleset::Unknown,
    };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let (current, new) = match text.split_once(SPLIT) {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let Ok(current) = gadget::parse(current, ruleset) else { return };
    exercise(&current);
    for problem in check_compatible(&current, &current) {
        let _ = (problem.snapd_error(), problem.fix());
    }
    if let Some(Ok(new)) = new.map(|t| gadget::parse(t, ruleset)) {
        exercise(&new);
        for problem in check_compatible(&current, &new) {
            let _ = (problem.snapd_error(), problem.fix());
        }
    }
});
