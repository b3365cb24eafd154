//! Engine errors: what a client is told, in words that name what was wrong.

use std::time::Duration;

use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The statement is not allowed for clients (DDL, DML, COPY, SET of engine settings, …).
    #[error("not allowed: {0}; burnrate SQL is read-only")]
    Refused(String),
    /// The statement is larger, or nests deeper, than a client statement may (SQLSTATE 54000).
    #[error("not allowed: {0}")]
    TooLarge(String),
    /// The statement does not parse.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// The query is not valid for this catalog (unknown table, column or function, types).
    #[error("{0}")]
    Plan(String),
    #[error("the query needs more memory than its limit allows, even spilling to disk: {0}")]
    OutOfMemory(String),
    #[error("the query ran longer than the statement timeout ({}s) and was cancelled", .0.as_secs())]
    Timeout(Duration),
    /// Over a concurrency limit after waiting for a slot (SQLSTATE 53300, HTTP 429).
    #[error("busy: {0}; waited {waited} s; retry shortly", waited = .1.as_secs_f64())]
    Busy(crate::Busy, Duration),
    #[error("query failed: {0}")]
    Execution(String),
    #[error("engine setup: {0}")]
    Setup(String),
    #[error("{0}")]
    Store(#[from] burnrate_store::StoreError),
}

impl EngineError {
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self, EngineError::OutOfMemory(_))
    }

    /// A planning error: `SQLOptions` refusals become [`EngineError::Refused`].
    pub(crate) fn refused_or_plan(e: DataFusionError) -> Self {
        let text = e.strip_backtrace();
        // DataFusion words these "DDL not supported: …", "DML not supported: …" and
        // "Statement not supported: …".
        if text.contains("not supported: ")
            && (text.contains("DDL") || text.contains("DML") || text.contains("Statement"))
        {
            let what = text.split_once("Error during planning: ").map(|(_, w)| w).unwrap_or(&text);
            return EngineError::Refused(what.to_owned());
        }
        EngineError::from(e)
    }
}

impl From<DataFusionError> for EngineError {
    fn from(e: DataFusionError) -> Self {
        match e.find_root() {
            DataFusionError::ResourcesExhausted(m) => EngineError::OutOfMemory(m.clone()),
            DataFusionError::Plan(_) | DataFusionError::SQL(..) | DataFusionError::SchemaError(..) => {
                EngineError::Plan(e.strip_backtrace())
            }
            _ => EngineError::Execution(e.strip_backtrace()),
        }
    }
}
