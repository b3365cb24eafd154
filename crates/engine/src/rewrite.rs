//! PostgreSQL idioms that clients send in their catalog queries and DataFusion does not plan,
//! rewritten on the parsed statement into what it does (after datafusion-pg-catalog's own
//! rewrites, which cover `OPERATOR(pg_catalog.~)`, `::regclass` and the like).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, CastKind, DataType, ExcludeSelectItem, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, GroupByExpr, Ident, ObjectName, OrderBy, OrderByExpr, OrderByKind, Query,
    Select, SelectItem, SetExpr, Statement, TableAliasColumnDef, TableFactor, UnaryOperator, Value, VisitMut,
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
    if let Statement::Query(query) = statement {
        result_column_names(query);
    }
    let _ = statement.visit(&mut FunctionsInFrom);
    let _ = statement.visit(&mut SubqueriesInOrderBy);
    let _ = statement.visit(&mut InSubqueriesInSelectList);
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
            // `col_description(table, column)` (Metabase's field sync): burnrate's columns carry
            // no comments, so it is NULL whatever it is asked — which also spares planning its
            // argument, `CAST(FORMAT('%I.%I', schema, table) AS REGCLASS)`, a name computed per
            // row that DataFusion cannot look up.
            Expr::Function(f)
                if f.name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("col_description")) =>
            {
                *e = Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(Expr::Value(Value::Null.into())),
                    data_type: DataType::Text,
                    array: false,
                    format: None,
                };
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

/// Names the result columns of a query as PostgreSQL does where DataFusion would spell out the
/// expression: `count(*)` is `count`, `sum(billed_cost)` is `sum`, `x::text` is `x`, `CASE …`
/// is `case`, and any other expression `?column?`. Clients show these names (psql's headers, a
/// BI tool's field names). A name two columns would share is left as DataFusion has it, which
/// refuses duplicate names; so is everything in a select list with `*`.
fn result_column_names(query: &mut Query) {
    let mut body = query.body.as_mut();
    while let SetExpr::SetOperation { left, .. } = body {
        body = left.as_mut();
    }
    let SetExpr::Select(select) = body else { return };
    if select.projection.iter().any(|i| matches!(i, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..))) {
        return;
    }
    let names: Vec<Option<String>> = select
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            SelectItem::UnnamedExpr(e) => Some(postgres_name(e)),
            _ => None,
        })
        .collect();
    for (item, name) in select.projection.iter_mut().zip(&names) {
        let (SelectItem::UnnamedExpr(e), Some(name)) = (&*item, name) else { continue };
        let plain_column = matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
        if plain_column || names.iter().filter(|n| n.as_ref() == Some(name)).count() > 1 {
            continue;
        }
        *item = SelectItem::ExprWithAlias { expr: e.clone(), alias: Ident::with_quote('"', name.clone()) };
    }
}

/// The name PostgreSQL gives a result column computed by `e`.
fn postgres_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()).unwrap_or_default(),
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => postgres_name(inner),
        Expr::Function(f) => {
            f.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.to_lowercase()).unwrap_or_default()
        }
        Expr::Case { .. } => "case".into(),
        Expr::Exists { .. } => "exists".into(),
        Expr::Array(_) => "array".into(),
        _ => "?column?".into(),
    }
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
        let mut subquery = parse_query("SELECT 1");
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

/// `ORDER BY` expressions holding a subquery (Grafana's table list: `ORDER BY CASE WHEN
/// quote_ident(table_schema) IN (SELECT …) THEN 0 ELSE 1 END, 1`), which DataFusion refuses in a
/// sort. Each becomes a hidden column of the select list and the query is wrapped to drop them:
/// `SELECT * EXCLUDE (__order_1) FROM (SELECT …, <expr> AS __order_1 FROM …) ORDER BY __order_1, 1`.
/// Positional items (`1`) still name the same column, as the hidden ones come last.
struct SubqueriesInOrderBy;

impl VisitorMut for SubqueriesInOrderBy {
    type Break = ();

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let Some(OrderBy { kind: OrderByKind::Expressions(items), .. }) = &query.order_by else {
            return ControlFlow::Continue(());
        };
        let SetExpr::Select(select) = query.body.as_ref() else {
            return ControlFlow::Continue(());
        };
        // DISTINCT would count the hidden columns as part of the row.
        if select.distinct.is_some() || !items.iter().any(|item| holds_subquery(&item.expr)) {
            return ControlFlow::Continue(());
        }
        let mut inner = query.clone();
        let Some(OrderBy { kind: OrderByKind::Expressions(items), .. }) = inner.order_by.take() else {
            return ControlFlow::Continue(());
        };
        let (limit, fetch) = (inner.limit_clause.take(), inner.fetch.take());
        let SetExpr::Select(select) = inner.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        let mut hidden = Vec::new();
        let mut outer_items = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            if matches!(item.expr, Expr::Value(_)) {
                outer_items.push(item);
                continue;
            }
            let name = Ident::new(format!("__order_{}", i + 1));
            select.projection.push(SelectItem::ExprWithAlias { expr: item.expr.clone(), alias: name.clone() });
            hidden.push(ObjectName::from(vec![name.clone()]));
            outer_items.push(OrderByExpr { expr: Expr::Identifier(name), ..item });
        }
        let mut outer = parse_query("SELECT * FROM (SELECT 1) AS __ordered");
        if let SetExpr::Select(wrapper) = outer.body.as_mut() {
            if let Some(SelectItem::Wildcard(options)) = wrapper.projection.first_mut() {
                options.opt_exclude = Some(ExcludeSelectItem::Multiple(hidden));
            }
            if let Some(TableFactor::Derived { subquery, .. }) = wrapper.from.first_mut().map(|t| &mut t.relation) {
                **subquery = inner;
            }
        }
        outer.order_by = Some(OrderBy { kind: OrderByKind::Expressions(outer_items), interpolate: None });
        (outer.limit_clause, outer.fetch) = (limit, fetch);
        *query = outer;
        ControlFlow::Continue(())
    }
}

/// `x IN (SELECT v …)` in a select list (Grafana's table list), which DataFusion only plans in a
/// filter → `array_has((SELECT array_agg(v) …), x)`, a scalar subquery it does plan. An empty
/// subquery gives NULL rather than false, which a `CASE WHEN` treats alike.
struct InSubqueriesInSelectList;

impl VisitorMut for InSubqueriesInSelectList {
    type Break = ();

    fn post_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        for item in &mut select.projection {
            let (SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) = item else {
                continue;
            };
            let _ = visit_expressions_mut(e, |e| {
                if let Expr::InSubquery { expr, subquery, negated } = e
                    && let SetExpr::Select(inner) = subquery.body.as_mut()
                    && let [SelectItem::UnnamedExpr(v) | SelectItem::ExprWithAlias { expr: v, .. }] =
                        inner.projection.as_mut_slice()
                    && matches!(&inner.group_by, GroupByExpr::Expressions(g, _) if g.is_empty())
                {
                    *v = call("array_agg", vec![v.clone()]);
                    let found = call("array_has", vec![Expr::Subquery(subquery.clone()), (**expr).clone()]);
                    *e = if *negated { Expr::UnaryOp { op: UnaryOperator::Not, expr: Box::new(found) } } else { found };
                }
                ControlFlow::<()>::Continue(())
            });
        }
        ControlFlow::Continue(())
    }
}

/// Whether `e` holds a subquery anywhere.
fn holds_subquery(e: &Expr) -> bool {
    visit_expressions(e, |e| match e {
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
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

/// A query skeleton to fill in (`SELECT 1`): parsed rather than spelled out field by field, so a
/// new field in sqlparser's AST does not break this.
fn parse_query(sql: &str) -> Query {
    use datafusion::sql::sqlparser::{dialect::PostgreSqlDialect, parser::Parser};
    match Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("a fixed query parses").remove(0) {
        Statement::Query(q) => *q,
        _ => unreachable!("a fixed query is a query"),
    }
}
