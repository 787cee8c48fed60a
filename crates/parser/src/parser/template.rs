//! Device (schema) template statements, IoTDB's `createSchemaTemplate` … `alterSchemaTemplate` rules:
//! kept apart from the other data statements because they all start with words (`SET`, `SHOW PATHS`,
//! `CREATE TIMESERIES OF`) that other statements share, and are recognised before those.

use sqlparser::tokenizer::Token;

use crate::ast::Statement;
use crate::data::ColumnDef;
use crate::error::ParseError;

use super::Parser;

/// `SCHEMA` or `DEVICE` before `TEMPLATE`, at token `n`.
fn template_word_at(parser: &Parser, n: usize) -> bool {
    (parser.tokens.is_keyword_at(n, "SCHEMA") || parser.tokens.is_keyword_at(n, "DEVICE"))
        && parser.tokens.is_keyword_at(n + 1, "TEMPLATE")
}

impl Parser {
    /// Whether the input at the current token is a template statement (then [`Parser::template`]
    /// parses it).
    pub(super) fn at_template_statement(&self) -> bool {
        let t = &self.tokens;
        let kw = |n: usize, word: &str| t.is_keyword_at(n, word);
        ((kw(0, "CREATE") || kw(0, "DROP") || kw(0, "SET") || kw(0, "UNSET") || kw(0, "ALTER"))
            && template_word_at(self, 1))
            || (kw(0, "CREATE")
                && kw(1, "TIMESERIES")
                && (kw(2, "OF") || kw(2, "USING"))
                && template_word_at(self, 3))
            || (kw(0, "DEACTIVATE"))
            || ((kw(0, "DELETE") || kw(0, "DROP"))
                && kw(1, "TIMESERIES")
                && kw(2, "OF")
                && template_word_at(self, 3))
            || (kw(0, "SHOW")
                && ((kw(1, "SCHEMA") || kw(1, "DEVICE")) && kw(2, "TEMPLATES")
                    || kw(1, "NODES") && kw(2, "IN")
                    || kw(1, "PATHS")))
    }

    /// One template statement (the caller checked [`Parser::at_template_statement`]).
    pub(super) fn template(&mut self) -> Result<Statement, ParseError> {
        let t = &mut self.tokens;
        if t.eat_keyword("CREATE") {
            if t.eat_keyword("TIMESERIES") {
                if !t.eat_keyword("OF") {
                    t.expect_keyword("USING")?;
                }
                self.template_word()?;
                self.tokens.expect_keyword("ON")?;
                let path = self.concrete_path("a path")?;
                return Ok(Statement::ActivateTemplate { path });
            }
            self.template_word()?;
            let name = self.name("a template name")?;
            let aligned = self.tokens.eat_keyword("ALIGNED");
            let measurements = if self.tokens.peek() == Some(&Token::LParen) {
                self.template_measurements()?
            } else {
                Vec::new()
            };
            Ok(Statement::CreateTemplate {
                name,
                aligned,
                measurements,
            })
        } else if t.eat_keyword("SET") {
            self.template_word()?;
            let name = self.name("a template name")?;
            self.tokens.expect_keyword("TO")?;
            let path = self.concrete_path("a path")?;
            Ok(Statement::SetTemplate { name, path })
        } else if t.eat_keyword("UNSET") {
            self.template_word()?;
            let name = self.name("a template name")?;
            self.tokens.expect_keyword("FROM")?;
            let path = self.concrete_path("a path")?;
            Ok(Statement::UnsetTemplate { name, path })
        } else if t.eat_keyword("ALTER") {
            self.template_word()?;
            let name = self.name("a template name")?;
            self.tokens.expect_keyword("ADD")?;
            let measurements = self.template_measurements()?;
            Ok(Statement::AlterTemplateAdd { name, measurements })
        } else if t.eat_keyword("DEACTIVATE") {
            // IoTDB's older form `DEACTIVATE TEMPLATE …` omits SCHEMA/DEVICE.
            if !self.tokens.eat_keyword("TEMPLATE") {
                self.template_word()?;
            }
            self.deactivate_rest()
        } else if t.eat_keyword("DELETE") || t.eat_keyword("DROP") {
            if self.tokens.eat_keyword("TIMESERIES") {
                self.tokens.expect_keyword("OF")?;
                self.template_word()?;
                return self.deactivate_rest();
            }
            self.template_word()?;
            let name = self.name("a template name")?;
            Ok(Statement::DropTemplate { name })
        } else {
            t.expect_keyword("SHOW")?;
            if t.eat_keyword("NODES") {
                t.expect_keyword("IN")?;
                self.template_word()?;
                let name = self.name("a template name")?;
                return Ok(Statement::ShowNodesInTemplate { name });
            }
            if t.eat_keyword("PATHS") {
                if self.tokens.eat_keyword("SET") {
                    self.template_word()?;
                    let name = self.name("a template name")?;
                    return Ok(Statement::ShowPathsSetTemplate { name });
                }
                let path = if self.tokens.is_keyword("ROOT") {
                    Some(self.path()?)
                } else {
                    None
                };
                self.tokens.expect_keyword("USING")?;
                self.template_word()?;
                let name = self.name("a template name")?;
                return Ok(Statement::ShowPathsUsingTemplate { path, name });
            }
            if !self.tokens.eat_keyword("SCHEMA") && !self.tokens.eat_keyword("DEVICE") {
                return Err(self.tokens.expected("DEVICE TEMPLATES or SCHEMA TEMPLATES"));
            }
            self.tokens.expect_keyword("TEMPLATES")?;
            Ok(Statement::ShowTemplates)
        }
    }

    /// `(SCHEMA | DEVICE) TEMPLATE`
    fn template_word(&mut self) -> Result<(), ParseError> {
        if !self.tokens.eat_keyword("SCHEMA") && !self.tokens.eat_keyword("DEVICE") {
            return Err(self.tokens.expected("DEVICE TEMPLATE or SCHEMA TEMPLATE"));
        }
        self.tokens.expect_keyword("TEMPLATE")
    }

    /// After `DEACTIVATE … TEMPLATE`: `[name] FROM path {, path}`.
    fn deactivate_rest(&mut self) -> Result<Statement, ParseError> {
        let name = if self.tokens.is_keyword("FROM") {
            None
        } else {
            Some(self.name("a template name or FROM")?)
        };
        self.tokens.expect_keyword("FROM")?;
        let mut paths = vec![self.path()?];
        while self.tokens.eat_token(&Token::Comma) {
            paths.push(self.path()?);
        }
        Ok(Statement::DeactivateTemplate { name, paths })
    }

    /// `( measurement type [attributes] {, …} )`
    fn template_measurements(&mut self) -> Result<Vec<ColumnDef>, ParseError> {
        self.tokens.expect_token(&Token::LParen, "'('")?;
        let mut measurements = Vec::new();
        loop {
            let name = self.node_name("a measurement name")?;
            let (data_type, attributes) = self.timeseries_attributes()?;
            measurements.push(ColumnDef {
                name,
                data_type,
                attributes,
            });
            if !self.tokens.eat_token(&Token::Comma) {
                self.tokens.expect_token(&Token::RParen, "',' or ')'")?;
                return Ok(measurements);
            }
        }
    }
}
