//! Exports of the organization's costs as FOCUS 1.2 (`GET /api/v1/exports`, and the export form
//! on the overview): the `costs` table under FOCUS column names, read through the SQL engine and
//! streamed — CSV as rows come, Parquet a row group at a time — so an export of any size holds
//! about a row group in memory. Each export is audited and counted against the organization's
//! export quota.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use burnrate_core::ApiScope;
use burnrate_engine::{QueryStream, SqlSession};
use chrono::NaiveDate;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::api::ApiQuery;
use crate::AppState;
use crate::auth::{ApiCaller, Authed, Caller};
use crate::error::{ApiError, AppError};

/// Rows per Parquet row group: what an export holds in memory at most.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// The FOCUS 1.2 columns of an export, from the `costs` table (and the source's name). Columns
/// FOCUS requires that the providers do not report are derived where FOCUS says how (billing
/// period from the charge period, pricing as consumed) and left null otherwise; burnrate's own
/// columns carry the `x_` prefix.
pub const FOCUS_COLUMNS: &str = "\
    c.charge_period_start AS \"ChargePeriodStart\", \
    c.charge_period_end AS \"ChargePeriodEnd\", \
    date_trunc('month', c.charge_period_start) AS \"BillingPeriodStart\", \
    date_trunc('month', c.charge_period_start) + INTERVAL '1 month' AS \"BillingPeriodEnd\", \
    c.billed_cost AS \"BilledCost\", \
    c.effective_cost AS \"EffectiveCost\", \
    c.list_cost AS \"ListCost\", \
    c.billed_cost AS \"ContractedCost\", \
    c.billing_currency AS \"BillingCurrency\", \
    c.source_id AS \"BillingAccountId\", \
    s.name AS \"BillingAccountName\", \
    c.provider_name AS \"ProviderName\", \
    c.provider_name AS \"PublisherName\", \
    c.provider_name AS \"InvoiceIssuerName\", \
    CAST(NULL AS VARCHAR) AS \"InvoiceId\", \
    c.service_name AS \"ServiceName\", \
    'AI and Machine Learning' AS \"ServiceCategory\", \
    CASE WHEN c.provider_name IN ('Google Cloud', 'Microsoft') THEN 'AI Platforms' ELSE 'Generative AI' END \
        AS \"ServiceSubcategory\", \
    c.sub_account_id AS \"SubAccountId\", \
    CAST(NULL AS VARCHAR) AS \"SubAccountName\", \
    CAST(NULL AS VARCHAR) AS \"RegionId\", \
    CAST(NULL AS VARCHAR) AS \"RegionName\", \
    CAST(NULL AS VARCHAR) AS \"ResourceId\", \
    CAST(NULL AS VARCHAR) AS \"ResourceName\", \
    CAST(NULL AS VARCHAR) AS \"ResourceType\", \
    c.sku_id AS \"SkuId\", \
    c.charge_category AS \"ChargeCategory\", \
    CAST(NULL AS VARCHAR) AS \"ChargeClass\", \
    CASE WHEN c.charge_category = 'Purchase' THEN 'One-Time' ELSE 'Usage-Based' END AS \"ChargeFrequency\", \
    c.charge_description AS \"ChargeDescription\", \
    CASE WHEN c.charge_category IN ('Usage', 'Purchase') THEN 'Standard' END AS \"PricingCategory\", \
    CAST(NULL AS VARCHAR) AS \"CommitmentDiscountId\", \
    CAST(NULL AS VARCHAR) AS \"CommitmentDiscountName\", \
    CAST(NULL AS VARCHAR) AS \"CommitmentDiscountCategory\", \
    CAST(NULL AS VARCHAR) AS \"CommitmentDiscountType\", \
    CAST(NULL AS VARCHAR) AS \"CommitmentDiscountStatus\", \
    c.consumed_quantity AS \"ConsumedQuantity\", \
    c.consumed_unit AS \"ConsumedUnit\", \
    c.consumed_quantity AS \"PricingQuantity\", \
    c.consumed_unit AS \"PricingUnit\", \
    c.tags AS \"Tags\", \
    c.model AS \"x_Model\", \
    c.api_key_id AS \"x_ApiKeyId\", \
    c.source_id AS \"x_SourceId\", \
    c.x_list_cost_estimated AS \"x_ListCostEstimated\"";

/// What to export: `dataset=focus`, `format=parquet|csv`, and the days `from` (inclusive) to
/// `to` (exclusive), UTC; without them, everything.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `focus`: costs as FOCUS 1.2.
    dataset: String,
    /// `parquet` (the default) or `csv`.
    #[serde(default)]
    format: String,
    /// The first day exported (UTC), `YYYY-MM-DD`.
    from: Option<String>,
    /// The day after the last exported (UTC), `YYYY-MM-DD`.
    to: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Parquet,
    Csv,
}

/// A checked export request.
struct Export {
    format: Format,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

impl ExportQuery {
    fn check(&self) -> Result<Export, AppError> {
        if self.dataset != "focus" {
            return Err(AppError::Validation(format!("dataset: {:?} is not known; focus is", self.dataset)));
        }
        let format = match self.format.as_str() {
            "" | "parquet" => Format::Parquet,
            "csv" => Format::Csv,
            other => return Err(AppError::Validation(format!("format: {other:?} is not parquet or csv"))),
        };
        let day = |name: &str, v: &Option<String>| {
            v.as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| {
                    v.parse::<NaiveDate>().map_err(|_| AppError::Validation(format!("{name}: {v:?} is not YYYY-MM-DD")))
                })
                .transpose()
        };
        let (from, to) = (day("from", &self.from)?, day("to", &self.to)?);
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            return Err(AppError::Validation("to: must be after from (it is the day after the last one)".into()));
        }
        Ok(Export { format, from, to })
    }
}

impl Export {
    /// The query: dates are checked values, so they are written into the SQL as literals.
    fn sql(&self) -> String {
        let mut conditions = Vec::new();
        if let Some(from) = self.from {
            conditions.push(format!("c.charge_day >= DATE '{from}'"));
        }
        if let Some(to) = self.to {
            conditions.push(format!("c.charge_day < DATE '{to}'"));
        }
        let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        format!(
            "SELECT {FOCUS_COLUMNS} FROM costs c LEFT JOIN sources s ON s.id = c.source_id{filter} \
             ORDER BY c.charge_period_start"
        )
    }

    fn file_name(&self) -> String {
        let span = match (self.from, self.to) {
            (None, None) => "all".to_owned(),
            (f, t) => format!(
                "{}_{}",
                f.map(|d| d.to_string()).unwrap_or_else(|| "start".into()),
                t.map(|d| d.to_string()).unwrap_or_else(|| "now".into())
            ),
        };
        let ext = if self.format == Format::Csv { "csv" } else { "parquet" };
        format!("burnrate-focus-{span}.{ext}")
    }
}

/// Checks the quota, records the export (S16) and starts it.
async fn export(state: &AppState, caller: &impl Caller, label: &str, q: &ExportQuery) -> Result<Response, AppError> {
    let export = q.check()?;
    let key = format!("export:{}", caller.scope().org_id());
    state
        .limiter
        .check(&key, state.config.exports_per_org)
        .await
        .map_err(|wait| AppError::RateLimited { retry_after_secs: wait.as_secs().max(1) })?;
    let session = super::console::session_as(state, caller, label)?;
    let stream = session.query(&export.sql()).await.map_err(|e| AppError::Internal(e.to_string()))?;
    let mut tx = state.store.tenant(caller.scope()).await?;
    let details = json!({ "dataset": "focus", "format": q.format.as_str(), "from": export.from, "to": export.to });
    tx.audit(caller.entry("costs_exported", "organization", caller.scope().org_id().to_string(), details)).await?;
    tx.commit().await?;
    let (content_type, body) = match export.format {
        Format::Csv => ("text/csv; charset=utf-8", super::console::csv_body(session, stream)),
        Format::Parquet => ("application/vnd.apache.parquet", parquet_body(session, stream)?),
    };
    let disposition = format!("attachment; filename=\"{}\"", export.file_name());
    Ok(([(header::CONTENT_TYPE, content_type.to_owned()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

/// The query's batches as one Parquet file, sent a row group at a time: the writer's finished
/// pages are taken out of its buffer after each batch, the footer at the end. A failure mid-way
/// ends the body with an error, so the client sees a broken transfer rather than a short file.
fn parquet_body(session: SqlSession, q: QueryStream) -> Result<Body, AppError> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let writer =
        ArrowWriter::try_new(Vec::new(), q.schema, Some(props)).map_err(|e| AppError::Internal(e.to_string()))?;
    let broken = |e: String| std::io::Error::other(e);
    let chunks = futures::stream::unfold(Some((session, q.stream, writer)), move |state| async move {
        let (session, mut stream, mut writer) = state?;
        loop {
            match stream.next().await {
                Some(Ok(batch)) => {
                    if let Err(e) = writer.write(&batch) {
                        return Some((Err(broken(e.to_string())), None));
                    }
                    let written = std::mem::take(writer.inner_mut());
                    if !written.is_empty() {
                        return Some((Ok(bytes::Bytes::from(written)), Some((session, stream, writer))));
                    }
                }
                Some(Err(e)) => return Some((Err(broken(e.to_string())), None)),
                None => {
                    let last = writer.finish().map(|_| bytes::Bytes::from(std::mem::take(writer.inner_mut())));
                    return Some((last.map_err(|e| broken(e.to_string())), None));
                }
            }
        }
    });
    Ok(Body::from_stream(chunks))
}

/// `GET /api/v1/exports`: the organization's costs as FOCUS 1.2, Parquet or CSV, streamed.
#[utoipa::path(get, path = "/exports", tag = "exports", params(ExportQuery),
    responses(
        (status = 200, description = "The FOCUS 1.2 file, streamed",
         content((Vec<u8> = "application/vnd.apache.parquet"), (String = "text/csv"))),
        super::openapi::Refusals, super::openapi::BodyRefusals))]
pub async fn api_export(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    caller.require(ApiScope::Read)?;
    let label = caller.actor().label;
    Ok(export(&state, &caller, &label, &q).await?)
}

/// The overview's export form.
pub async fn download(
    State(state): State<AppState>,
    who: Authed,
    Query(q): Query<ExportQuery>,
) -> Result<Response, AppError> {
    let label = who.email.as_str().to_owned();
    export(&state, &who, &label, &q).await
}
