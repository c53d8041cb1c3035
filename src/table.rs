//! Plain-text tables for the commands' human output (`checks`, `spool status`, `collectors
//! list`). \[pure\]

/// Columns padded to their widest cell, two spaces apart; the last column is not padded.
pub fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let rows = [
            ["A".to_string(), "BB".to_string(), "C".to_string()],
            ["long".to_string(), "x".to_string(), "last column".to_string()],
        ];
        assert_eq!(table(&rows), "A     BB  C\nlong  x   last column\n");
    }
}
