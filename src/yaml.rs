//! Reading YAML (`gadget.yaml`, a snap's `snap.yaml`, `model sign` inputs) with errors a person
//! reads: one line, with the line and column, never the parser's debug text. \[pure\]
//!
//! serde-saphyr renders its own errors over several lines with a source snippet, and its limits
//! (nesting depth, number of nodes, …) as Rust debug text (`budget breached: Depth { depth: 65 }`);
//! [`from_str`] says the same in words.

use serde::de::DeserializeOwned;
use serde_saphyr::budget::BudgetBreach;

/// Deserializes YAML text.
///
/// # Errors
/// What is wrong and where, on one line (`line 1 column 67: nested more than 64 levels deep`).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_saphyr::from_str(text).map_err(|err| describe(&err))
}

/// One human line for a serde-saphyr error.
pub fn describe(err: &serde_saphyr::Error) -> String {
    let at = err.location().map(|l| format!("line {} column {}: ", l.line(), l.column()));
    let err = err.without_snippet();
    if let serde_saphyr::Error::Budget { breach, .. } = err {
        return format!("{}{}", at.unwrap_or_default(), describe_breach(breach));
    }
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

fn describe_breach(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Depth { depth } => {
            format!("nested more than {} levels deep", depth.saturating_sub(1))
        }
        BudgetBreach::Nodes { nodes } => format!("too many values ({nodes})"),
        BudgetBreach::Events { events } => format!("too large ({events} parser events)"),
        BudgetBreach::Aliases { aliases } => format!("too many aliases ({aliases})"),
        BudgetBreach::Anchors { anchors } => format!("too many anchors ({anchors})"),
        BudgetBreach::Documents { documents } => format!("too many documents ({documents})"),
        BudgetBreach::ScalarBytes { total_scalar_bytes } => {
            format!("too much text ({total_scalar_bytes} bytes of values)")
        }
        BudgetBreach::MergeKeys { merge_keys } => format!("too many merge keys ({merge_keys})"),
        BudgetBreach::InclusionDepth { depth } => format!("includes nested {depth} deep"),
        #[allow(unreachable_patterns)] // serde-saphyr may add limits; say something human then too
        _ => "too large to read".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        from_str::<serde_json::Value>(text).expect_err("refused")
    }

    #[test]
    fn deep_nesting_is_said_in_words() {
        let deep = format!("a: {}{}", "[".repeat(100), "]".repeat(100));
        let err = error(&deep);
        assert_eq!(err, "line 1 column 67: nested more than 64 levels deep");
        let mut block = String::from("x:");
        for i in 0..70 {
            block.push_str(&format!("\n{}k:", "  ".repeat(i + 1)));
        }
        let err = error(&block);
        assert!(err.ends_with("nested more than 64 levels deep"), "{err}");
        assert!(!err.contains('{') && !err.contains('\n'), "{err}");
    }

    #[test]
    fn other_errors_are_one_line_without_the_snippet() {
        let err = error("a: [1, 2\n");
        assert!(!err.contains('\n') && !err.starts_with("error: "), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }
}
