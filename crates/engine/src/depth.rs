//! How deep a statement's expressions may nest. The parser builds a chain of operators
//! (`1 + 1 + … + 1`, `a = 1 OR a = 2 OR …`) without recursing, but every later step — rewriting,
//! planning, optimizing, evaluating, even dropping the tree — recurses once an operator, and a
//! few hundred of them overflow a thread's stack and end the process. Parentheses and function
//! calls are bounded by the parser already; chains are counted here, on the tokens, before
//! anything recurses.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::EngineError;

/// The most operators an expression may chain along one path, its parentheses' included.
pub const MAX_EXPRESSION_DEPTH: usize = 128;

/// Refuses a statement whose expressions chain more operators than [`MAX_EXPRESSION_DEPTH`].
pub(crate) fn check(sql: &str) -> Result<(), EngineError> {
    // A statement that does not tokenize is the parser's to refuse, with its own message.
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else { return Ok(()) };
    // Operators chained so far at each open parenthesis or bracket, the outermost first.
    let mut chained: Vec<usize> = vec![0];
    for token in tokens {
        match token {
            Token::LParen | Token::LBracket => chained.push(0),
            Token::RParen | Token::RBracket => {
                if chained.len() > 1 {
                    chained.pop();
                }
            }
            // A new expression begins.
            Token::Comma | Token::SemiColon => *chained.last_mut().expect("never empty") = 0,
            Token::Word(w) => match w.keyword {
                Keyword::AND
                | Keyword::OR
                | Keyword::NOT
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::SIMILAR
                | Keyword::IS
                | Keyword::BETWEEN
                | Keyword::IN
                | Keyword::COLLATE
                | Keyword::AT => *chained.last_mut().expect("never empty") += 1,
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::OFFSET
                | Keyword::UNION
                | Keyword::INTERSECT
                | Keyword::EXCEPT
                | Keyword::JOIN
                | Keyword::ON
                | Keyword::WHEN
                | Keyword::THEN
                | Keyword::ELSE
                | Keyword::END
                | Keyword::AS
                | Keyword::WITH => *chained.last_mut().expect("never empty") = 0,
                _ => {}
            },
            Token::Whitespace(_)
            | Token::Number(..)
            | Token::Char(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::Placeholder(_)
            | Token::Period
            | Token::Colon
            | Token::EOF => {}
            // Every other symbol is an operator (`+`, `||`, `=`, `::`, `->`, …).
            _ => *chained.last_mut().expect("never empty") += 1,
        }
        let depth = chained.iter().sum::<usize>() + chained.len() - 1;
        if depth > MAX_EXPRESSION_DEPTH {
            return Err(EngineError::TooLarge(format!(
                "an expression chaining more than {MAX_EXPRESSION_DEPTH} operators; \
                 a long list of alternatives reads better as IN (…)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_chains_are_refused_and_long_lists_and_ordinary_queries_are_not() {
        let chain = |n: usize, op: &str| format!("SELECT {}", vec!["1"; n].join(op));
        assert!(check(&chain(100, " + ")).is_ok());
        for op in [" + ", " || ", " AND ", "::int::int + ", " = "] {
            let refused = check(&chain(300, op)).unwrap_err().to_string();
            assert!(
                refused.starts_with("not allowed: an expression chaining more than 128 operators"),
                "{op}: {refused}"
            );
        }
        // Inside parentheses the chain goes on from the outside.
        let nested = format!("SELECT {}", vec!["(1 + 1 + 1 + 1 + 1"; 40].join(" + ") + &")".repeat(40));
        assert!(check(&nested).is_err());
        // Lists are not chains, nor are a query's clauses.
        let list = format!("SELECT * FROM costs WHERE model IN ({})", vec!["'m'"; 5000].join(", "));
        assert!(check(&list).is_ok());
        let wide = format!("SELECT {} FROM costs", vec!["a + b * c"; 500].join(", "));
        assert!(check(&wide).is_ok());
        let many_filters = "SELECT provider_name, sum(billed_cost) FROM costs WHERE charge_day >= $1 AND charge_day < $2 \
             AND provider_name = 'OpenAI' AND model IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 10";
        assert!(check(many_filters).is_ok());
    }
}
