//! Terminal output helpers.

/// Removes control characters (remote names must not drive the terminal:
/// no escape sequences, no carriage returns that overwrite a line) and the
/// invisible bidirectional controls that make text read differently from
/// what it is ("Trojan Source").
pub fn clean(value: &str) -> String {
    value.chars().filter(|c| !c.is_control() && !is_bidi_control(*c)).collect()
}

/// Unicode's explicit directional formatting characters.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(clean(cell).chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let cell = clean(cell);
            if i + 1 == row.len() {
                line.push_str(&cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
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
    fn clean_strips_terminal_controls_and_bidi_overrides() {
        let hostile = "a\u{1b}]0;pwned\u{7}b\u{1b}[2J\rc\u{9b}31md\u{202E}gnp.exe\u{2066}e\u{7f}";
        let cleaned = clean(hostile);
        assert_eq!(cleaned, "a]0;pwnedb[2Jc31mdgnp.exee");
        assert!(cleaned.chars().all(|c| !c.is_control()));
        // Ordinary text, including non-ASCII, is untouched.
        assert_eq!(clean("Zoë → ü 日本 @x"), "Zoë → ü 日本 @x");
    }

    #[test]
    fn tables_never_carry_control_characters() {
        let rows = vec![
            vec!["NAME".to_string(), "ID".to_string()],
            vec!["\u{1b}[31mred\u{1b}[0m".to_string(), "x\ny".to_string()],
        ];
        let out = table(&rows);
        assert!(!out.contains('\u{1b}'), "{out:?}");
        assert_eq!(out.lines().count(), 2, "a newline in a cell cannot add a row: {out:?}");
        assert!(out.contains("[31mred[0m"));
    }
}
