//! sqllogictest replays of what BI tools and drivers send on connecting (`tests/replays/*.slt`),
//! run over the wire endpoint with the simple protocol, as those clients send them.
//!
//! The records understood: `statement ok`, and `query <types> [rowsort]` with the expected rows
//! after `----`, one row per line, values separated by one space, `NULL` for null and `(empty)`
//! for the empty string. A record ends at a blank line; `#` starts a comment line.

use std::path::PathBuf;

use tokio_postgres::SimpleQueryMessage;

use crate::wire::{connect, create_credential, org_with_costs};

struct Record {
    line: usize,
    sql: String,
    /// `None` for `statement ok`.
    expected: Option<Vec<String>>,
    rowsort: bool,
}

fn parse(text: &str) -> Vec<Record> {
    let mut records = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        let head: Vec<&str> = line.split_whitespace().collect();
        let (query, rowsort) = match head.as_slice() {
            [] => continue,
            [first, ..] if first.starts_with('#') => continue,
            ["statement", "ok"] => (false, false),
            ["query", _types] => (true, false),
            ["query", _types, "rowsort"] => (true, true),
            other => panic!("line {}: not a record this runner knows: {other:?}", n + 1),
        };
        let mut sql = Vec::new();
        while let Some((_, l)) = lines.next_if(|(_, l)| !l.trim().is_empty() && l.trim() != "----") {
            sql.push(l);
        }
        let expected = query.then(|| {
            assert_eq!(lines.next().map(|(_, l)| l.trim()), Some("----"), "line {}: a query needs ----", n + 1);
            let mut rows = Vec::new();
            while let Some((_, l)) = lines.next_if(|(_, l)| !l.trim().is_empty()) {
                rows.push(l.to_owned());
            }
            rows
        });
        records.push(Record { line: n + 1, sql: sql.join("\n"), expected, rowsort });
    }
    records
}

fn value(v: Option<&str>) -> String {
    match v {
        None => "NULL".to_owned(),
        Some("") => "(empty)".to_owned(),
        Some(v) => v.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_time_queries_of_grafana_metabase_and_npgsql_replay_as_recorded() {
    let app = burnrate_testkit::TestApp::spawn().await;
    let (a, key, _) = org_with_costs(&app, "Acme", 10).await;
    let cred = create_credential(&a, &key, "replays").await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/replays");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for client in ["grafana.slt", "metabase.slt", "npgsql.slt"] {
        assert!(files.iter().any(|f| f.ends_with(client)), "{client} is missing");
    }
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        // A fresh connection per file, as each client would open.
        let client = connect(&app.pg_addr.to_string(), &cred).await;
        for record in parse(&std::fs::read_to_string(&file).unwrap()) {
            let at = format!("{name}:{}", record.line);
            let messages = client.simple_query(&record.sql).await.unwrap_or_else(|e| {
                panic!("{at}: {}", e.as_db_error().map(|d| d.message().to_owned()).unwrap_or(e.to_string()))
            });
            let Some(mut expected) = record.expected else { continue };
            let mut got: Vec<String> = messages
                .iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::Row(r) => {
                        Some((0..r.len()).map(|i| value(r.get(i))).collect::<Vec<_>>().join(" "))
                    }
                    _ => None,
                })
                .collect();
            if record.rowsort {
                got.sort();
                expected.sort();
            }
            assert_eq!(got, expected, "{at}");
        }
    }
}
