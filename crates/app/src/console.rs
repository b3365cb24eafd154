//! What the SQL console shows beside the editor: the tables and columns a session sees.

use burnrate_engine::SqlSession;

use crate::{Error, Result};

/// A table the session sees, named as a query names it, with its columns and their types.
pub struct Table {
    pub name: String,
    pub columns: Vec<(String, String)>,
}

/// The tables and columns `session` sees, in schema and column order (database sources' tables
/// once a query has named them).
pub async fn tables(session: &SqlSession) -> Result<Vec<Table>> {
    let sql = "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns \
               WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
               ORDER BY table_schema, table_name, ordinal_position";
    let (_, batches) = session.collect(sql).await.map_err(Error::internal)?;
    let mut out: Vec<Table> = Vec::new();
    for batch in &batches {
        let text = |i: usize| batch.column(i).as_any().downcast_ref::<arrow_array::StringArray>().cloned();
        let (Some(schema), Some(table), Some(column), Some(kind)) = (text(0), text(1), text(2), text(3)) else {
            continue;
        };
        for row in 0..batch.num_rows() {
            let name = match schema.value(row) {
                "public" => table.value(row).to_owned(),
                s => format!("{s}.{}", table.value(row)),
            };
            if out.last().is_none_or(|t| t.name != name) {
                out.push(Table { name, columns: Vec::new() });
            }
            let column = (column.value(row).to_owned(), kind.value(row).to_owned());
            out.last_mut().expect("pushed").columns.push(column);
        }
    }
    Ok(out)
}
