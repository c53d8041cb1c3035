//! README.md and docs/configuration.md list every configuration key exactly as the code defines it.

#[test]
fn readme_and_docs_carry_the_key_table() {
    let table = pocketses::config::markdown_table();
    for file in ["README.md", "docs/configuration.md"] {
        let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("cannot read {path}: {err}"));
        assert!(text.contains(&table), "{file} lacks the current key table; paste this:\n{table}");
    }
}
