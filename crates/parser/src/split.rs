//! Splits a script into statements for the CLI, which sends them one at a time and must know where each
//! starts to report errors against the script's own line numbers. Never fails: anything that is not
//! valid SQL is left for the server's parser to reject.

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementText {
    /// The statement without its `;`, trimmed. Comments inside or in front of it are kept, so positions
    /// inside `text` map to the script: script line = `line` + (line in `text`) - 1.
    pub text: String,
    /// The 1-based line of the script where `text` starts.
    pub line: u64,
}

/// Where a text ends to the lexer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LexicalState {
    Code,
    /// Inside a quoted string or back-quoted identifier closed by this character (a doubled quote is
    /// simply a close followed by a reopen, so it needs no special case).
    Quoted(char),
    LineComment,
    BlockComment,
}

/// Walks `text` with the parser's lexical rules (`--` and `/* */` comments, quotes and back-quotes,
/// no backslash escapes), calling `code` with the byte offset of every character of code that is not
/// whitespace (an opening quote included); returns where the text ends. The statement splitter and
/// the CLI's line editor read a text the same way through it.
pub fn walk_code(text: &str, mut code: impl FnMut(usize, char)) -> LexicalState {
    let mut state = LexicalState::Code;
    let mut chars = text.char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        let next = chars.peek().map(|(_, next)| *next);
        match state {
            LexicalState::Code => match c {
                '-' if next == Some('-') => state = LexicalState::LineComment,
                '/' if next == Some('*') => {
                    chars.next();
                    state = LexicalState::BlockComment;
                }
                '\'' | '"' | '`' => {
                    state = LexicalState::Quoted(c);
                    code(offset, c);
                }
                c if c.is_whitespace() => {}
                c => code(offset, c),
            },
            LexicalState::Quoted(quote) if c == quote => state = LexicalState::Code,
            LexicalState::Quoted(_) => {}
            LexicalState::LineComment if c == '\n' => state = LexicalState::Code,
            LexicalState::LineComment => {}
            LexicalState::BlockComment => {
                if c == '*' && next == Some('/') {
                    chars.next();
                    state = LexicalState::Code;
                }
            }
        }
    }
    state
}

/// Splits `sql` on `;` outside quotes, back-quotes and comments, with the same lexical rules as the parser
/// ([`walk_code`]). Pieces that hold only whitespace and comments are dropped; an unterminated quote or
/// comment runs to the end of the input.
pub fn split_statements(sql: &str) -> Vec<StatementText> {
    let mut statements = Vec::new();
    // Byte offset and line where the current piece starts, and whether it has anything but comments.
    let (mut piece_start, mut piece_line, mut has_code) = (0, 1, false);
    // The line of each `;`, counted as the walk reaches it.
    let (mut counted_to, mut line) = (0, 1);
    walk_code(sql, |offset, c| {
        if c != ';' {
            has_code = true;
            return;
        }
        line += sql[counted_to..offset].matches('\n').count() as u64;
        counted_to = offset;
        let piece = &sql[piece_start..offset];
        push_piece(&mut statements, piece, piece_line, has_code);
        piece_start = offset + 1;
        piece_line = line;
        has_code = false;
    });
    push_piece(&mut statements, &sql[piece_start..], piece_line, has_code);
    statements
}

/// Adds `piece` (which starts on `first_line`) unless it holds no code.
fn push_piece(statements: &mut Vec<StatementText>, piece: &str, first_line: u64, has_code: bool) {
    if !has_code {
        return;
    }
    let leading = &piece[..piece.len() - piece.trim_start().len()];
    let newlines = leading.matches('\n').count() as u64;
    statements.push(StatementText {
        text: piece.trim().to_owned(),
        line: first_line + newlines,
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn split(sql: &str) -> Vec<(String, u64)> {
        split_statements(sql)
            .into_iter()
            .map(|s| (s.text, s.line))
            .collect()
    }

    #[test]
    fn splits_on_semicolons_and_trims() {
        assert_eq!(
            split("show pipes; show version ;"),
            [("show pipes".into(), 1), ("show version".into(), 1)]
        );
        assert_eq!(split("show pipes"), [("show pipes".into(), 1)]);
    }

    #[test]
    fn semicolons_in_quotes_do_not_split() {
        let sql = r#"create pipe p ('a'='x;y', "b"="it"";s", 'c'='it'';s'); start pipe `p;q`"#;
        assert_eq!(
            split(sql),
            [
                (
                    r#"create pipe p ('a'='x;y', "b"="it"";s", 'c'='it'';s')"#.into(),
                    1
                ),
                ("start pipe `p;q`".into(), 1),
            ]
        );
    }

    #[test]
    fn semicolons_in_comments_do_not_split() {
        let sql = "show pipes -- a; b\n; /* c; d */ show version";
        assert_eq!(
            split(sql),
            [
                ("show pipes -- a; b".into(), 1),
                ("/* c; d */ show version".into(), 2)
            ]
        );
    }

    #[test]
    fn line_numbers_are_where_statements_start() {
        let sql = "\n\ncreate pipe p (\n  'a'='b'\n);\n\n  start pipe p;\nstop pipe p";
        assert_eq!(
            split(sql),
            [
                ("create pipe p (\n  'a'='b'\n)".into(), 3),
                ("start pipe p".into(), 7),
                ("stop pipe p".into(), 8),
            ]
        );
    }

    #[test]
    fn empty_and_comment_only_pieces_are_dropped() {
        assert!(split("").is_empty());
        assert!(split(" ;; \n ; -- nothing\n /* here; */").is_empty());
        assert_eq!(split(";;show pipes;;"), [("show pipes".into(), 1)]);
    }

    #[test]
    fn unterminated_quotes_and_comments_run_to_the_end() {
        assert_eq!(split("show pipe 'a;b"), [("show pipe 'a;b".into(), 1)]);
        assert_eq!(
            split("show pipes /* a; b"),
            [("show pipes /* a; b".into(), 1)]
        );
    }

    #[test]
    fn pieces_parse_like_the_whole_script() {
        let sql = "-- set up\ncreate pipe p ('a'='x;y');\n/* ; */ show pipes; start pipe p";
        let pieces: Vec<_> = split_statements(sql)
            .iter()
            .flat_map(|piece| crate::parse(&piece.text).unwrap())
            .collect();
        assert_eq!(pieces, crate::parse(sql).unwrap());
    }
}
