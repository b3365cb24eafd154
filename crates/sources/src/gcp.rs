//! Google Cloud (providers.md §5): the Cloud Billing export in BigQuery, read with a service
//! account's JSON key. The key signs an RS256 JWT, exchanged at the key's `token_uri` for an
//! access token; BigQuery `jobs.query` runs one parameterised GoogleSQL aggregate per month — spend
//! of the AI services (Vertex AI, the Gemini API) per day, service, SKU, project, currency and cost
//! type — and `jobs.getQueryResults` is polled until the job completes and paged with `pageToken`.
//!
//! Credits (free tier, committed-use and other discounts) are their own cost lines with charge
//! category `Credit`, so the billed cost of a day is the cost plus its (negative) credits, as on
//! the invoice. Resource labels become the lines' tags. Cells are strings and read by column name.

use std::collections::HashMap;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use burnrate_core::{ChargeCategory, CostRecord, Money, SyncWindow};
use burnrate_net::HttpClient;
use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::{classify, fetch_error, sanitize};
use crate::{
    Call, Progress, ProgressSink, PullStats, Pulled, RecordSender, SourceError, SourceErrorKind, Try, collect,
    until_not_throttled,
};

pub const PROVIDER: &str = "Google Cloud";
const TOKEN_ENDPOINT: &str = "POST token_uri";
const QUERY_ENDPOINT: &str = "POST bigquery/v2 jobs.query";
pub const BIGQUERY_URL: &str = "https://bigquery.googleapis.com";
const SCOPE: &str = "https://www.googleapis.com/auth/bigquery";
/// The services whose spend is AI: Vertex AI (Gemini and partner models on Vertex) and the Gemini
/// Developer API under its current and former names.
pub const AI_SERVICES: [&str; 3] = ["Vertex AI", "Gemini API", "Generative Language API"];
/// Rows per page asked of BigQuery.
const PAGE_ROWS: u32 = 5_000;
/// Polls of an unfinished job, each waiting up to `timeoutMs` on BigQuery's side.
const MAX_POLLS: u32 = 120;
const MAX_PAGES: u32 = 10_000;
/// BigQuery's reasons for a 403 that passes: wait and ask again.
const THROTTLE_REASONS: [&str; 2] = ["rateLimitExceeded", "jobRateLimitExceeded"];

/// The fields of a service account's JSON key that burnrate uses.
#[derive(Deserialize)]
pub struct ServiceAccountKey {
    #[serde(rename = "type")]
    pub kind: String,
    pub project_id: String,
    pub private_key_id: String,
    pub private_key: String,
    pub client_email: String,
    pub token_uri: String,
}

impl ServiceAccountKey {
    /// Reads a key file's JSON and checks that its private key can sign. The error names the
    /// field that is wrong, never its value.
    pub fn parse(json: &str) -> Result<Self, String> {
        let key: ServiceAccountKey = serde_json::from_str(json).map_err(|e| {
            // serde's message may quote the input: keep only where it failed.
            format!("not a service account JSON key (at line {}, column {})", e.line(), e.column())
        })?;
        if key.kind != "service_account" {
            return Err("\"type\" is not \"service_account\"".into());
        }
        if !key.client_email.contains('@') {
            return Err("\"client_email\" is not an email address".into());
        }
        url::Url::parse(&key.token_uri).map_err(|_| "\"token_uri\" is not a URL".to_owned())?;
        key.signer()?;
        Ok(key)
    }

    fn signer(&self) -> Result<KeyPair, String> {
        let der = rustls_pemfile::private_key(&mut self.private_key.as_bytes())
            .ok()
            .flatten()
            .ok_or_else(|| "\"private_key\" is not a PEM private key".to_owned())?;
        KeyPair::from_pkcs8(der.secret_der()).map_err(|_| "\"private_key\" is not an RSA key".to_owned())
    }

    /// The signed assertion that asks `token_uri` for a token for `SCOPE`, valid an hour.
    fn assertion(&self, now: i64) -> Result<String, String> {
        let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": self.private_key_id });
        let claims = serde_json::json!({
            "iss": self.client_email, "scope": SCOPE, "aud": self.token_uri, "iat": now, "exp": now + 3600,
        });
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let key = self.signer()?;
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
            .map_err(|_| "signing failed".to_owned())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// A service account reading one billing export table.
pub struct BigQueryBilling {
    /// `https://bigquery.googleapis.com` unless a proxy or a test server stands in.
    pub base_url: url::Url,
    /// The service account's JSON key, as pasted.
    pub key: SecretString,
    /// The project that runs (and pays for) the queries; the key's own project when `None`.
    pub project_id: Option<String>,
    /// `project.dataset.gcp_billing_export_v1_<billing account>`.
    pub table: String,
    /// The dataset's location (`US`, `EU`, …), where BigQuery needs it.
    pub location: Option<String>,
    token: crate::oauth::TokenCache,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryReply {
    #[serde(default)]
    job_complete: bool,
    job_reference: Option<JobReference>,
    schema: Option<Schema>,
    #[serde(default)]
    rows: Vec<Row>,
    page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobReference {
    job_id: String,
    location: Option<String>,
}

#[derive(Deserialize)]
struct Schema {
    fields: Vec<Field>,
}

#[derive(Deserialize)]
struct Field {
    name: String,
}

#[derive(Deserialize)]
struct Row {
    f: Vec<Cell>,
}

#[derive(Deserialize)]
struct Cell {
    v: Option<String>,
}

/// Google's error envelope: `{"error": {"code", "message", "errors": [{"reason", …}], "status"}}`.
#[derive(Deserialize)]
struct GoogleError {
    error: GoogleErrorInner,
}

#[derive(Deserialize)]
struct GoogleErrorInner {
    message: String,
    #[serde(default)]
    errors: Vec<GoogleErrorItem>,
}

#[derive(Deserialize)]
struct GoogleErrorItem {
    reason: Option<String>,
}

/// The SQL of the monthly aggregate: the table is the one validated name, everything else a
/// parameter.
fn query_sql(table: &str) -> String {
    format!(
        "SELECT DATE(usage_start_time) AS usage_date, service.description AS service, sku.id AS sku_id, \
         sku.description AS sku, project.id AS project_id, currency, cost_type, SUM(cost) AS cost, \
         SUM(IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) c), 0)) AS credits, \
         SUM(cost_at_list) AS cost_at_list, SUM(usage.amount_in_pricing_units) AS pricing_qty, \
         ANY_VALUE(usage.pricing_unit) AS pricing_unit, TO_JSON_STRING(labels) AS labels \
         FROM `{table}` \
         WHERE usage_start_time >= @start AND usage_start_time < @end AND service.description IN UNNEST(@services) \
         GROUP BY 1, 2, 3, 4, 5, 6, 7, TO_JSON_STRING(labels)"
    )
}

/// `project.dataset.table`: the export table, checked because it is written into the SQL.
pub fn valid_table(table: &str) -> bool {
    let parts: Vec<&str> = table.split('.').collect();
    let project = |p: &str| {
        (6..=30).contains(&p.len())
            && p.starts_with(|c: char| c.is_ascii_lowercase())
            && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let name = |n: &str| (1..=1024).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    matches!(parts.as_slice(), [p, d, t] if project(p) && name(d) && name(t))
}

/// A project id (6 to 30 lowercase letters, digits and hyphens, starting with a letter).
pub fn valid_project(project: &str) -> bool {
    valid_table(&format!("{project}.d.t"))
}

impl BigQueryBilling {
    pub fn new(
        base_url: url::Url,
        key: SecretString,
        project_id: Option<String>,
        table: String,
        location: Option<String>,
    ) -> Self {
        Self { base_url, key, project_id, table, location, token: Default::default() }
    }

    fn key(&self, call: &Call) -> Result<ServiceAccountKey, SourceError> {
        ServiceAccountKey::parse(self.key.expose_secret()).map_err(|e| {
            call.error(SourceErrorKind::Credential { status: 0, detail: format!("the service account key: {e}") })
        })
    }

    /// A bearer token: the one held while it has more than two minutes left, else a new one.
    async fn token(&self, http: &HttpClient, window: SyncWindow) -> Result<SecretString, SourceError> {
        if let Some(token) = self.token.get() {
            return Ok(token);
        }
        let call = Call { provider: PROVIDER, endpoint: TOKEN_ENDPOINT, window };
        let key = self.key(&call)?;
        let assertion = key
            .assertion(chrono::Utc::now().timestamp())
            .map_err(|e| call.error(SourceErrorKind::Credential { status: 0, detail: e }))?;
        let url = url::Url::parse(&key.token_uri)
            .map_err(|e| call.error(SourceErrorKind::Malformed(format!("token_uri: {e}"))))?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        crate::oauth::fetch_token(http, &call, &url, form, &self.token).await
    }

    fn project(&self, call: &Call) -> Result<String, SourceError> {
        match &self.project_id {
            Some(p) => Ok(p.clone()),
            None => Ok(self.key(call)?.project_id),
        }
    }

    fn api_url(&self, path: &str) -> url::Url {
        let mut url = self.base_url.clone();
        let full = format!("{}/bigquery/v2/{path}", url.path().trim_end_matches('/'));
        url.set_path(&full);
        url.set_query(None);
        url
    }

    /// One BigQuery call, with BigQuery's 403 `rateLimitExceeded` waited out like a 429.
    async fn send(
        &self,
        http: &HttpClient,
        call: &Call,
        url: &url::Url,
        body: Option<&bytes::Bytes>,
    ) -> Result<QueryReply, SourceError> {
        until_not_throttled(call, || async move {
            let token = self.token(http, call.window).await?;
            let auth = format!("Bearer {}", token.expose_secret());
            let reply = match body {
                Some(body) => {
                    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
                    http.post_read(url, &headers, body.clone()).await
                }
                None => http.get(url, &[("authorization", auth.as_str())]).await,
            }
            .map_err(|e| call.error(fetch_error(e)))?;
            if (200..300).contains(&reply.status) {
                let page = serde_json::from_slice(&reply.body)
                    .map_err(|e| call.error(SourceErrorKind::Malformed(e.to_string())))?;
                return Ok(Try::Done(page));
            }
            let error = serde_json::from_slice::<GoogleError>(&reply.body).ok();
            let reason =
                error.as_ref().and_then(|e| e.error.errors.iter().find_map(|i| i.reason.clone())).unwrap_or_default();
            if THROTTLE_REASONS.contains(&reason.as_str()) {
                return Ok(Try::Throttled);
            }
            let message = error.map(|e| e.error.message).unwrap_or_else(|| "no error message".into());
            let detail = sanitize(&if reason.is_empty() { message } else { format!("{reason}: {message}") });
            Err(call.error(match reason.as_str() {
                "accessDenied" | "billingNotEnabled" => SourceErrorKind::Credential { status: reply.status, detail },
                _ => classify(reply.status, reply.attempts, detail),
            }))
        })
        .await
    }

    /// The query of `days` (at most a month), as `jobs.query` takes it.
    fn request(&self, days: SyncWindow) -> bytes::Bytes {
        let timestamp = |d: NaiveDate| format!("{d} 00:00:00+00");
        let services: Vec<serde_json::Value> = AI_SERVICES.iter().map(|s| serde_json::json!({ "value": s })).collect();
        let mut body = serde_json::json!({
            "query": query_sql(&self.table),
            "useLegacySql": false,
            "parameterMode": "NAMED",
            "queryParameters": [
                { "name": "start", "parameterType": { "type": "TIMESTAMP" }, "parameterValue": { "value": timestamp(days.start()) } },
                { "name": "end", "parameterType": { "type": "TIMESTAMP" }, "parameterValue": { "value": timestamp(days.end()) } },
                { "name": "services", "parameterType": { "type": "ARRAY", "arrayType": { "type": "STRING" } }, "parameterValue": { "arrayValues": services } }
            ],
            "timeoutMs": 20_000,
            "maxResults": PAGE_ROWS,
            "formatOptions": { "useInt64Timestamp": true },
            "requestId": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(location) = &self.location {
            body["location"] = serde_json::json!(location);
        }
        body.to_string().into()
    }

    /// `jobs.getQueryResults` of `job`: the next page, or the job's state while it runs.
    fn results_url(&self, project: &str, job: &JobReference, page: Option<&str>) -> url::Url {
        let mut url = self.api_url(&format!("projects/{project}/queries/{}", job.job_id));
        {
            let mut q = url.query_pairs_mut();
            if let Some(location) = job.location.as_ref().or(self.location.as_ref()) {
                q.append_pair("location", location);
            }
            q.append_pair("maxResults", &PAGE_ROWS.to_string())
                .append_pair("timeoutMs", "20000")
                .append_pair("formatOptions.useInt64Timestamp", "true");
            if let Some(page) = page {
                q.append_pair("pageToken", page);
            }
        }
        url
    }

    /// Every row of `days`, in the order of the schema's fields.
    async fn query(
        &self,
        http: &HttpClient,
        call: &Call,
        days: SyncWindow,
        stats: &mut PullStats,
    ) -> Result<Vec<CostRecord>, SourceError> {
        let project = self.project(call)?;
        let body = self.request(days);
        let mut reply =
            self.send(http, call, &self.api_url(&format!("projects/{project}/queries")), Some(&body)).await?;
        let mut records = Vec::new();
        let mut columns: Option<HashMap<String, usize>> = None;
        let (mut polls, mut seen) = (0, Vec::new());
        loop {
            if reply.job_complete {
                stats.pages += 1;
                if let Some(schema) = &reply.schema {
                    columns = Some(schema.fields.iter().enumerate().map(|(i, f)| (f.name.clone(), i)).collect());
                }
                if !reply.rows.is_empty() {
                    let columns = columns
                        .as_ref()
                        .ok_or_else(|| call.error(SourceErrorKind::Malformed("rows came without a schema".into())))?;
                    for row in &reply.rows {
                        records.extend(record(call, columns, row, &mut stats.rounded_values)?);
                    }
                }
            }
            let job = reply.job_reference.as_ref().ok_or_else(|| {
                call.error(SourceErrorKind::Malformed("an unfinished or paged answer has no jobReference".into()))
            })?;
            let next = match (reply.job_complete, reply.page_token.as_deref().filter(|t| !t.is_empty())) {
                (true, None) => return Ok(records),
                (true, Some(token)) => {
                    if seen.iter().any(|s: &String| s == token) || stats.pages >= MAX_PAGES {
                        return Err(call.error(SourceErrorKind::Malformed("paging does not end".into())));
                    }
                    seen.push(token.to_owned());
                    self.results_url(&project, job, Some(token))
                }
                (false, _) => {
                    polls += 1;
                    if polls > MAX_POLLS {
                        return Err(call.error(SourceErrorKind::Malformed(format!(
                            "job {} did not complete after {MAX_POLLS} polls",
                            job.job_id
                        ))));
                    }
                    // BigQuery holds each poll up to timeoutMs: no wait needed between them.
                    self.results_url(&project, job, None)
                }
            };
            reply = self.send(http, call, &next, None).await?;
        }
    }

    /// Pulls every cost line of `window` into memory.
    pub async fn pull_costs(&self, http: &HttpClient, window: SyncWindow) -> Result<Pulled<CostRecord>, SourceError> {
        collect(|tx| async move { self.stream_costs(http, window, &|_| {}, &tx).await }).await
    }

    /// Sends the AI services' cost lines of `window` to `out`, a month at a time.
    pub async fn stream_costs(
        &self,
        http: &HttpClient,
        window: SyncWindow,
        progress: ProgressSink<'_>,
        out: &RecordSender<CostRecord>,
    ) -> Result<PullStats, SourceError> {
        let call = Call { provider: PROVIDER, endpoint: QUERY_ENDPOINT, window };
        let mut stats = PullStats::default();
        for days in window.months() {
            let records = self.query(http, &call, days, &mut stats).await?;
            stats.rows += records.len();
            crate::hand_over(&call, out, records).await?;
            progress(Progress {
                report: "costs",
                pages: stats.pages,
                window,
                reached: Some(days.end() - Duration::days(1)),
            });
        }
        Ok(stats)
    }
}

/// A row's cost line, and its credits as a line of their own.
fn record(
    call: &Call,
    columns: &HashMap<String, usize>,
    row: &Row,
    rounded: &mut u32,
) -> Result<Vec<CostRecord>, SourceError> {
    let malformed = |what: String| call.error(SourceErrorKind::Malformed(what));
    let cell = |name: &str| -> Result<Option<&str>, SourceError> {
        let i = *columns.get(name).ok_or_else(|| malformed(format!("the answer has no {name} column")))?;
        Ok(row.f.get(i).ok_or_else(|| malformed(format!("a row has no {name} cell")))?.v.as_deref())
    };
    let text = |name: &str| cell(name).map(|v| v.map(str::to_owned));
    let decimal = |name: &str| -> Result<Option<Decimal>, SourceError> {
        cell(name)?
            .map(|v| burnrate_core::parse_decimal(v).map(|(d, _)| d).map_err(|e| malformed(format!("{name}: {e}"))))
            .transpose()
    };
    let day: NaiveDate =
        cell("usage_date")?.and_then(|d| d.parse().ok()).ok_or_else(|| malformed("usage_date is not a date".into()))?;
    let currency = text("currency")?.ok_or_else(|| malformed("currency is empty".into()))?;
    let money = |name: &str, rounded: &mut u32| -> Result<Money, SourceError> {
        crate::money(call, cell(name)?.unwrap_or("0"), &currency, rounded)
    };
    let cost = money("cost", rounded)?;
    let credits = money("credits", rounded)?;
    let list = money("cost_at_list", rounded)?;
    let category = match text("cost_type")?.as_deref() {
        Some("tax") => ChargeCategory::Tax,
        Some("adjustment") | Some("rounding_error") => ChargeCategory::Adjustment,
        _ => ChargeCategory::Usage,
    };
    let start = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let sku = text("sku")?;
    // `[{"key": "team", "value": "search"}, …]`, as TO_JSON_STRING writes a repeated record.
    #[derive(Deserialize)]
    struct Label {
        key: String,
        value: Option<String>,
    }
    let tags = match cell("labels")? {
        Some(json) => serde_json::from_str::<Vec<Label>>(json)
            .map_err(|e| malformed(format!("labels: {e}")))?
            .into_iter()
            .map(|l| (l.key, l.value.unwrap_or_default()))
            .collect(),
        None => Default::default(),
    };
    let line = CostRecord {
        charge_period_start: start,
        charge_period_end: start + Duration::days(1),
        billed_cost: cost,
        effective_cost: cost,
        list_cost: list,
        list_cost_estimated: false,
        provider_name: PROVIDER.into(),
        service_name: text("service")?.unwrap_or_else(|| "Google Cloud".into()),
        sub_account_id: text("project_id")?,
        sku_id: text("sku_id")?,
        model: sku.as_deref().and_then(model_of_sku),
        charge_category: category,
        charge_description: sku,
        consumed_quantity: decimal("pricing_qty")?,
        consumed_unit: text("pricing_unit")?,
        api_key_id: None,
        tags,
    };
    let mut lines = Vec::with_capacity(2);
    if !credits.amount().is_zero() {
        lines.push(CostRecord {
            billed_cost: credits,
            effective_cost: credits,
            list_cost: Money::zero(credits.currency()),
            charge_category: ChargeCategory::Credit,
            consumed_quantity: None,
            consumed_unit: None,
            charge_description: line.charge_description.as_ref().map(|d| format!("Credits: {d}")),
            ..line.clone()
        });
    }
    lines.insert(0, line);
    Ok(lines)
}

/// The model a Vertex AI SKU is for, where its description starts with one ("Gemini 2.5 Flash
/// Input Text Tokens" → "Gemini 2.5 Flash"): the words before the token class. SKU descriptions
/// are not a documented format; this is best effort and the SKU is kept whole.
pub fn model_of_sku(sku: &str) -> Option<String> {
    let words: Vec<&str> = sku.split_whitespace().collect();
    let at = words.iter().position(|w| ["Input", "Output", "Cached", "Batch", "Predictions"].contains(w))?;
    (at > 0).then(|| words[..at].join(" "))
}

/// What this module registers. Google's export adds and updates rows for days after the usage,
/// and each query is billed by the bytes it scans: 7 days re-pulled every 6 hours.
pub(crate) static REGISTRATION: crate::Provider = crate::Provider {
    name: "gcp",
    label: "Google Cloud AI",
    base_url: BIGQUERY_URL,
    secret_label: "Service account key",
    reports_as: PROVIDER,
    credential_hint: "check that the service account key is current (not deleted or replaced) and that the account has roles/bigquery.jobUser on the query project and roles/bigquery.dataViewer on the billing export dataset",
    schedule: crate::Schedule { repull_days: 7, interval_minutes: 360, ..crate::Schedule::DEFAULT },
    connect,
};

/// What a Google Cloud source needs beside its sealed service account key: the billing export
/// table (`project.dataset.gcp_billing_export_v1_…`), the project that runs the queries (the
/// key's own when unset), the dataset's location, and the service account's email (read from the
/// key, for people to see which it is).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub billing_table: BillingTable,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

/// A BigQuery billing-export connector from a source's settings: its table, and the project and
/// location the queries run in.
fn connect(
    config: &crate::SourceConfig,
    base_url: url::Url,
    key: SecretString,
) -> Result<Box<dyn crate::Connector>, String> {
    let crate::ProviderSettings::Gcp(settings) = &config.provider else {
        return Err("not a Google Cloud source".into());
    };
    let table = settings.billing_table.to_string();
    let (project, location) = (settings.project_id.as_ref(), settings.location.as_ref());
    let (project, location) = (project.map(ToString::to_string), location.map(ToString::to_string));
    Ok(Box::new(BigQueryBilling::new(base_url, key, project, table, location)))
}

crate::provider::connector!(costs BigQueryBilling {});

crate::setting::setting!(
    /// The billing export table, `project.dataset.table`.
    BillingTable,
    |raw| match valid_table(raw.trim()) {
        true => Ok(raw.trim().to_owned()),
        false => Err("Billing table: the export table as project.dataset.table, e.g. \
                      acme-billing.billing_export.gcp_billing_export_v1_01ABCD_23EF45_6789AB."),
    }
);

crate::setting::setting!(
    /// The project that runs the queries.
    ProjectId,
    |raw| match valid_project(raw.trim()) {
        true => Ok(raw.trim().to_owned()),
        false => Err("Project ID: 6 to 30 lowercase letters, digits or hyphens."),
    }
);

crate::setting::setting!(
    /// The dataset's location: `US`, `EU`, `europe-west1`, …
    Location,
    |raw| {
        let l = raw.trim();
        match (1..=40).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            true => Ok(l.to_owned()),
            false => Err("Location: the dataset's location, such as US, EU or europe-west1."),
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_skus_are_read_strictly_and_models_best_effort() {
        assert!(valid_table("billing-proj.billing_ds.gcp_billing_export_v1_01ABCD_23EF45_6789AB"));
        for bad in ["billing-proj.ds", "a.b.c", "billing-proj.ds.t`; DROP", "billing-proj.ds.t.u", "Billing-Proj.ds.t"]
        {
            assert!(!valid_table(bad), "{bad}");
        }
        assert_eq!(model_of_sku("Gemini 2.0 Flash Input Text Tokens").as_deref(), Some("Gemini 2.0 Flash"));
        assert_eq!(model_of_sku("Claude Sonnet 4 Output Tokens").as_deref(), Some("Claude Sonnet 4"));
        assert_eq!(model_of_sku("Online prediction node hours"), None);
    }
}
