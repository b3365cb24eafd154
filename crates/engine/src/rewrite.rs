//! PostgreSQL idioms that clients send in their catalog queries and DataFusion does not plan,
//! rewritten on the parsed statement into what it does (after datafusion-pg-catalog's own
//! rewrites, which cover `OPERATOR(pg_catalog.~)`, `::regclass` and the like).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, GroupByExpr,
    Ident, ObjectName, Query, SelectItem, SetExpr, Statement, TableAliasColumnDef, TableFactor, Value, VisitMut,
    VisitorMut, visit_expressions, visit_expressions_mut,
};

/// Aggregates a scalar subquery may already use (then it needs no help).
const AGGREGATES: &[&str] = &[
    "array_agg",
    "avg",
    "bool_and",
    "bool_or",
    "count",
    "every",
    "first_value",
    "last_value",
    "max",
    "min",
    "string_agg",
    "sum",
];

/// Table functions DataFusion has; any other function in `FROM` is a scalar one.
const TABLE_FUNCTIONS: &[&str] = &["generate_series", "range", "unnest", "pg_get_keywords"];

pub(crate) fn postgres_idioms(statement: &mut Statement) {
    let _ = statement.visit(&mut FunctionsInFrom);
    let _ = visit_expressions_mut(statement, |e| {
        match e {
            // `(row).field` (pgJDBC: `(result.KEYS).x`) → `get_field(row, 'field')`.
            Expr::CompoundFieldAccess { root, access_chain } => {
                if let [AccessExpr::Dot(Expr::Identifier(field))] = access_chain.as_slice() {
                    let name = Expr::Value(Value::SingleQuotedString(field.value.clone()).into());
                    *e = call("get_field", vec![(**root).clone(), name]);
                }
            }
            // `user`, PostgreSQL's special register (Grafana's search-path query), which parses as
            // a call without parentheses → `session_user()`.
            Expr::Function(f)
                if matches!(f.args, FunctionArguments::None)
                    && f.name.0.len() == 1
                    && f.name.0[0]
                        .as_ident()
                        .is_some_and(|i| i.quote_style.is_none() && i.value.eq_ignore_ascii_case("user")) =>
            {
                *e = call("session_user", vec![]);
            }
            // A scalar subquery that selects one plain value (npgsql: `(SELECT rngtypid FROM
            // pg_range WHERE rngmultitypid = typ.oid)`, pgJDBC's `getTypeInfo`): DataFusion only
            // decorrelates aggregated ones, so the value is wrapped in `first_value`. PostgreSQL
            // would fail if such a subquery found two rows; these catalog lookups find at most one.
            Expr::Subquery(query) => {
                if let SetExpr::Select(select) = query.body.as_mut()
                    && let [item] = select.projection.as_mut_slice()
                    && matches!(&select.group_by, GroupByExpr::Expressions(g, _) if g.is_empty())
                    && select.having.is_none()
                {
                    let value = match item {
                        SelectItem::UnnamedExpr(v) | SelectItem::ExprWithAlias { expr: v, .. } => v,
                        _ => return ControlFlow::<()>::Continue(()),
                    };
                    if !aggregates(value) {
                        *value = call("first_value", vec![value.clone()]);
                    }
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Functions in `FROM` with an alias but no column names (Grafana: `FROM generate_series(…) AS
/// i, string_to_array(…) s`, then `s[i]`). In PostgreSQL the alias names the one column too,
/// and a scalar function there is a one-row table; DataFusion knows neither, so:
/// `generate_series(…) AS i` → `generate_series(…) AS i(i)` and `f(…) AS s` →
/// `(SELECT f(…) AS s) AS s`.
struct FunctionsInFrom;

impl VisitorMut for FunctionsInFrom {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, args: Some(args), alias: Some(alias), .. } = factor else {
            return ControlFlow::Continue(());
        };
        if !alias.columns.is_empty() || name.0.len() != 1 {
            return ControlFlow::Continue(());
        }
        let called = name.0[0].as_ident().map(|i| i.value.to_ascii_lowercase()).unwrap_or_default();
        if TABLE_FUNCTIONS.contains(&called.as_str()) {
            alias.columns = vec![TableAliasColumnDef::from_name(alias.name.value.clone())];
            return ControlFlow::Continue(());
        }
        let value = function(name.clone(), args.args.clone());
        let mut subquery = select_one();
        if let SetExpr::Select(select) = subquery.body.as_mut() {
            select.projection = vec![SelectItem::ExprWithAlias { expr: value, alias: alias.name.clone() }];
        }
        *factor = TableFactor::Derived {
            lateral: false,
            subquery: Box::new(subquery),
            alias: Some(alias.clone()),
            sample: None,
        };
        ControlFlow::Continue(())
    }
}

/// Whether `e` calls an aggregate anywhere.
fn aggregates(e: &Expr) -> bool {
    visit_expressions(e, |e| match e {
        Expr::Function(f)
            if f.over.is_none()
                && f.name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| AGGREGATES.iter().any(|a| i.value.eq_ignore_ascii_case(a))) =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// `name(args…)`.
fn call(name: &str, args: Vec<Expr>) -> Expr {
    let args = args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect();
    function(ObjectName::from(vec![Ident::new(name)]), args)
}

fn function(name: ObjectName, args: Vec<FunctionArg>) -> Expr {
    Expr::Function(Function {
        name,
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList { duplicate_treatment: None, args, clauses: vec![] }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// `SELECT 1`, to fill in: parsed rather than spelled out field by field, so a new field in
/// sqlparser's AST does not break this.
fn select_one() -> Query {
    use datafusion::sql::sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
    match Parser::parse_sql(&PostgreSqlDialect {}, "SELECT 1").expect("SELECT 1 parses").remove(0) {
        Statement::Query(q) => *q,
        _ => unreachable!("SELECT 1 is a query"),
    }
}
