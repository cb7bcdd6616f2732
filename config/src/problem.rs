//! Problems found while loading: each names its file and, where known, the
//! line and column, so `accessgraph check` can print them like a compiler.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One thing wrong with the configuration, the catalog or the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in, as the user would name it.
    pub file: PathBuf,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// What is wrong, naming the key or value.
    pub message: String,
}

impl Problem {
    /// A problem about a whole file (no line).
    pub fn in_file(file: impl Into<PathBuf>, message: impl Into<String>) -> Problem {
        Problem { file: file.into(), line: None, column: None, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem `load` found, in file order, then line order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Maps byte offsets of one text to 1-based (line, column).
#[derive(Clone, Debug)]
pub(crate) struct LineIndex {
    /// Byte offset at which each line starts.
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of a byte offset. Offsets past
    /// the end map to the end; offsets inside a character to its start.
    pub(crate) fn locate(&self, text: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        // Number of line starts at or before the offset = 1-based line.
        let line = self.starts.partition_point(|&start| start <= offset).max(1);
        let start = self.starts[line - 1];
        let column = text[start..offset].chars().count() + 1;
        (line, column)
    }
}

/// Collects the problems of one file, turning spans into lines.
pub(crate) struct FileCtx<'t> {
    /// Name of the file in messages.
    pub(crate) file: PathBuf,
    /// Its text.
    pub(crate) text: &'t str,
    index: LineIndex,
    /// Problems so far.
    pub(crate) problems: Vec<Problem>,
}

impl<'t> FileCtx<'t> {
    pub(crate) fn new(file: &Path, text: &'t str) -> FileCtx<'t> {
        FileCtx { file: file.to_path_buf(), text, index: LineIndex::new(text), problems: Vec::new() }
    }

    /// 1-based (line, column) of a byte offset.
    pub(crate) fn locate(&self, offset: usize) -> (usize, usize) {
        self.index.locate(self.text, offset)
    }

    /// 1-based line of a span's start.
    pub(crate) fn line_of(&self, span: &Range<usize>) -> usize {
        self.locate(span.start).0
    }

    /// Records a problem at a span (or at no particular place).
    pub(crate) fn at(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        let (line, column) = match span {
            Some(span) => {
                let (line, column) = self.locate(span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        self.problems.push(Problem { file: self.file.clone(), line, column, message: message.into() });
    }

    /// The problems, sorted by place (problems without a line first).
    pub(crate) fn finish(mut self) -> Vec<Problem> {
        self.problems.sort_by_key(|p| (p.line, p.column));
        self.problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_maps_offsets() {
        let text = "ab\ncd\n\nxé z";
        let index = LineIndex::new(text);
        assert_eq!(index.locate(text, 0), (1, 1));
        assert_eq!(index.locate(text, 1), (1, 2));
        assert_eq!(index.locate(text, 2), (1, 3)); // the newline itself
        assert_eq!(index.locate(text, 3), (2, 1));
        assert_eq!(index.locate(text, 6), (3, 1));
        assert_eq!(index.locate(text, 7), (4, 1));
        // 'é' is two bytes: 'z' is at byte 11, the 4th character.
        assert_eq!(index.locate(text, 11), (4, 4));
        // Inside 'é' maps to its start.
        assert_eq!(index.locate(text, 9), (4, 2));
        // Past the end maps to the end.
        assert_eq!(index.locate(text, 100), (4, 5));
        let empty = LineIndex::new("");
        assert_eq!(empty.locate("", 5), (1, 1));
    }

    #[test]
    fn problem_display_omits_missing_parts() {
        let mut p = Problem::in_file("a.toml", "bad");
        assert_eq!(p.to_string(), "a.toml: bad");
        p.line = Some(3);
        assert_eq!(p.to_string(), "a.toml:3: bad");
        p.column = Some(7);
        assert_eq!(p.to_string(), "a.toml:3:7: bad");
        let all = Problems(vec![p.clone(), Problem::in_file("b", "x")]);
        assert_eq!(all.to_string(), "a.toml:3:7: bad\nb: x");
    }
}
