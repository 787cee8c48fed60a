//! Turns SQL text into a cursor over significant tokens with their positions, using sqlparser's tokenizer
//! with a dialect tuned to IoTDB's lexical rules, so the parser never deals with whitespace or comments.
//! The cursor also exposes the source text under the tokens, for the few IoTDB lexemes sqlparser cannot
//! split right (paths such as `root.sg.12.s1`, bare datetimes such as `2017-11-01T00:00:00+08:00`).

use sqlparser::dialect::Dialect;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::error::ParseError;

/// IoTDB's lexical rules as far as sqlparser can express them: back-quotes delimit identifiers, `'…'` and
/// `"…"` are both string literals (a doubled quote escapes itself, backslashes are plain characters), and
/// identifiers may start with digits (`2nd_pipe`, like IoTDB's node names).
#[derive(Debug, Default)]
pub(crate) struct DuetDialect;

impl Dialect for DuetDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_'
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`'
    }

    fn supports_numeric_prefix(&self) -> bool {
        true
    }
}

/// A cursor over the significant tokens of one input.
///
/// A lexical error does not abort tokenizing up front: the tokens before it are kept and the error is
/// reported only when the parser reaches that point, so the first problem in the text is the one reported.
pub(crate) struct TokenStream {
    tokens: Vec<TokenWithSpan>,
    /// The byte range of each token in `source`.
    ranges: Vec<(usize, usize)>,
    source: String,
    position: usize,
    /// Just past the last significant token: where "end of input" errors point.
    end: Location,
    lexical_error: Option<ParseError>,
}

impl TokenStream {
    pub(crate) fn new(sql: &str) -> Self {
        let dialect = DuetDialect;
        let mut tokens = Vec::new();
        let lexical_error = Tokenizer::new(&dialect, sql)
            .tokenize_with_location_into_buf(&mut tokens)
            .err()
            .map(|error| {
                ParseError::syntax(error.location.line, error.location.column, error.message)
            });
        tokens.retain(|token| !matches!(token.token, Token::Whitespace(_) | Token::EOF));
        let end = tokens
            .last()
            .map_or(Location::new(1, 1), |token| token.span.end);
        let ranges = byte_ranges(sql, &tokens);
        Self {
            tokens,
            ranges,
            source: sql.to_owned(),
            position: 0,
            end,
            lexical_error,
        }
    }

    pub(crate) fn peek(&self) -> Option<&Token> {
        self.peek_nth(0)
    }

    pub(crate) fn peek_nth(&self, n: usize) -> Option<&Token> {
        self.tokens.get(self.position + n).map(|token| &token.token)
    }

    /// Consumes the current token if `convert` accepts it.
    pub(crate) fn next_if_map<T>(
        &mut self,
        convert: impl FnOnce(&Token) -> Option<T>,
    ) -> Option<T> {
        let converted = self.peek().and_then(convert);
        if converted.is_some() {
            self.position += 1;
        }
        converted
    }

    pub(crate) fn at_end(&self) -> bool {
        self.position >= self.tokens.len()
    }

    /// Where the current token starts (or the end-of-input position).
    pub(crate) fn location(&self) -> Location {
        self.tokens
            .get(self.position)
            .map_or(self.end, |token| token.span.start)
    }

    /// Whether the token `n` ahead is the unquoted word `keyword` (any case).
    pub(crate) fn is_keyword_at(&self, n: usize, keyword: &str) -> bool {
        matches!(self.peek_nth(n), Some(Token::Word(word))
            if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(keyword))
    }

    pub(crate) fn is_keyword(&self, keyword: &str) -> bool {
        self.is_keyword_at(0, keyword)
    }

    /// Consumes the current token if it is `keyword`.
    pub(crate) fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.is_keyword(keyword);
        if found {
            self.position += 1;
        }
        found
    }

    /// Consumes `keywords` if they all come next, otherwise nothing.
    pub(crate) fn eat_keywords(&mut self, keywords: &[&str]) -> bool {
        let found = keywords
            .iter()
            .enumerate()
            .all(|(n, keyword)| self.is_keyword_at(n, keyword));
        if found {
            self.position += keywords.len();
        }
        found
    }

    /// Consumes the current token if it equals `token` (punctuation such as `(`).
    pub(crate) fn eat_token(&mut self, token: &Token) -> bool {
        let found = self.peek() == Some(token);
        if found {
            self.position += 1;
        }
        found
    }

    pub(crate) fn expect_keyword(&mut self, keyword: &str) -> Result<(), ParseError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.expected(keyword))
        }
    }

    pub(crate) fn expect_token(
        &mut self,
        token: &Token,
        description: &str,
    ) -> Result<(), ParseError> {
        if self.eat_token(token) {
            Ok(())
        } else {
            Err(self.expected(description))
        }
    }

    /// The source text from the start of the current token to the end of the input, with the byte offset
    /// where it starts; `None` at the end of the tokens.
    pub(crate) fn rest(&self) -> Option<(usize, &str)> {
        let (start, _) = *self.ranges.get(self.position)?;
        Some((start, self.source.get(start..)?))
    }

    /// Consumes every token that ends at or before byte `offset` of the source (the end of a lexeme scanned
    /// with [`Self::rest`]). A token that starts before `offset` but runs past it is an error: the lexeme
    /// ended inside it.
    pub(crate) fn skip_to(&mut self, offset: usize, what: &str) -> Result<(), ParseError> {
        while self
            .ranges
            .get(self.position)
            .is_some_and(|(_, end)| *end <= offset)
        {
            self.position += 1;
        }
        match self.ranges.get(self.position) {
            Some((start, _)) if *start < offset => {
                Err(self.expected(&format!("the end of {what}")))
            }
            _ => Ok(()),
        }
    }

    /// Consumes the current token, whatever it is.
    pub(crate) fn advance(&mut self) {
        if !self.at_end() {
            self.position += 1;
        }
    }

    /// The error "expected {what} but found {current token}" at the current token.
    ///
    /// At the end of the tokens, a pending lexical error is the real cause and is returned instead.
    pub(crate) fn expected(&self, what: &str) -> ParseError {
        match (self.tokens.get(self.position), &self.lexical_error) {
            (Some(token), _) => ParseError::syntax(
                token.span.start.line,
                token.span.start.column,
                format!("expected {what} but found {}", describe(&token.token)),
            ),
            (None, Some(error)) => error.clone(),
            (None, None) => ParseError::syntax(
                self.end.line,
                self.end.column,
                format!("expected {what} but found end of input"),
            ),
        }
    }

    /// A lexical error that stopped tokenizing; it must fail the parse even when every statement before it
    /// parsed.
    pub(crate) fn lexical_error(&self) -> Option<&ParseError> {
        self.lexical_error.as_ref()
    }
}

/// The byte range of each token in `sql`, from their line/column spans (columns count characters). One
/// pass over the text, since the spans come in order.
fn byte_ranges(sql: &str, tokens: &[TokenWithSpan]) -> Vec<(usize, usize)> {
    let mut chars = sql.char_indices().peekable();
    let (mut line, mut column, mut byte) = (1_u64, 1_u64, 0_usize);
    let mut seek = |to: Location| {
        while (line, column) < (to.line, to.column) {
            let Some((offset, c)) = chars.next() else {
                break;
            };
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
            byte = offset + c.len_utf8();
        }
        byte
    };
    tokens
        .iter()
        .map(|token| (seek(token.span.start), seek(token.span.end)))
        .collect()
}

/// How a token is named in error messages: as written, so the user recognises it.
fn describe(token: &Token) -> String {
    const MAX_CHARS: usize = 40;
    let (prefix, text) = match token {
        Token::SingleQuotedString(_) | Token::DoubleQuotedString(_) => {
            ("string ", token.to_string())
        }
        Token::Word(word) if word.quote_style.is_some() => ("", token.to_string()),
        _ => ("", format!("'{token}'")),
    };
    // A huge literal would drown the message; its start is enough to find it.
    if text.chars().count() > MAX_CHARS {
        let start: String = text.chars().take(MAX_CHARS).collect();
        format!("{prefix}{start}…")
    } else {
        format!("{prefix}{text}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn tokens(sql: &str) -> Vec<Token> {
        let mut stream = TokenStream::new(sql);
        assert!(stream.lexical_error().is_none(), "{sql:?}");
        std::iter::from_fn(|| stream.next_if_map(|token| Some(token.clone()))).collect()
    }

    #[test]
    fn dialect_follows_iotdb_quoting() {
        assert_eq!(
            tokens(r#"'it''s' "say ""hi""" `a``b` 2nd"#),
            [
                Token::SingleQuotedString("it's".into()),
                Token::DoubleQuotedString(r#"say "hi""#.into()),
                Token::make_word("a`b", Some('`')),
                Token::make_word("2nd", None),
            ]
        );
        assert_eq!(tokens(r"'a\'"), [Token::SingleQuotedString(r"a\".into())]);
    }

    #[test]
    fn whitespace_and_comments_are_skipped() {
        assert_eq!(
            tokens("-- x\n/* y */ ( \t)"),
            [Token::LParen, Token::RParen]
        );
    }

    #[test]
    fn byte_ranges_cover_each_token() {
        let sql = "é.x\n  'a''b'  /* c */ `q`";
        let mut stream = TokenStream::new(sql);
        let mut texts = Vec::new();
        while let Some((start, _)) = stream.rest() {
            let (_, end) = stream.ranges[stream.position];
            texts.push(&sql[start..end]);
            stream.advance();
        }
        assert_eq!(texts, ["é", ".", "x", "'a''b'", "`q`"]);
    }

    #[test]
    fn positions_are_one_based() {
        let mut stream = TokenStream::new("\n  show");
        assert_eq!(stream.location(), Location::new(2, 3));
        assert!(stream.eat_keyword("SHOW"));
        assert_eq!(stream.location(), Location::new(2, 7));
        assert_eq!(TokenStream::new("").location(), Location::new(1, 1));
    }
}
