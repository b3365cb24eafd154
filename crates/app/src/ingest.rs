//! Requests applications report over OTLP (S26): ingest keys, and storing what they send.
//!
//! ```text
//!   export ─▶ key checked ─▶ decoded, read (content dropped) ─▶ priced ─▶ committer ─▶ answer
//!                                                                           │ group commit:
//!                                                  batches arriving together │ one file per org
//!                                                  are stored together ──────┘ and day, one claim
//! ```
//!
//! An ingest key is the organization's, not a person's: it writes requests and reads nothing,
//! so it survives its maker's leaving (production telemetry must not stop when an admin
//! leaves); revoke it when someone who saw it should no longer write. An export is answered only
//! after its spans are durably stored, so an exporter that retries neither loses nor doubles one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use burnrate_core::{IngestKeyId, RequestRecord, UsageRecord};
use burnrate_crypto::{ScopedToken, token_hash};
use burnrate_lake::Merge;
/// What front ends need of OTLP's encodings.
pub use burnrate_otlp::{Body, Encoding, ExportTraceServiceResponse, MAX_BODY_BYTES, encode_response};
use burnrate_otlp::{ExportTracePartialSuccess, TagAttributes};
use burnrate_sources::SourceKind;
pub use burnrate_store::IngestKeyRecord;
use burnrate_store::{AuditAction, OrgScope};
use chrono::Utc;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::api_keys::label;
use crate::{Actor, App, Error, Result};

pub const INGEST_KEY_PREFIX: &str = "bri_";

/// How long the committer waits for more exports to store with the first one: short against an
/// exporter's timeout (10 s by default), long enough to make one file of a burst.
const GROUP_WINDOW: Duration = Duration::from_millis(25);
/// Requests stored in one group at most; a larger burst is stored in several.
const GROUP_REQUESTS: usize = 50_000;
/// Exports waiting for the committer; beyond them an exporter is told to retry.
const QUEUED_EXPORTS: usize = 1024;

/// A key as it is handed over, once.
pub struct NewIngestKey {
    pub id: IngestKeyId,
    /// The key itself: exists only in this value.
    pub key: String,
    pub prefix: String,
}

/// An ingest key that authenticated: the organization it writes for.
#[derive(Clone, Copy, Debug)]
pub struct Ingester {
    pub scope: OrgScope,
    pub key_id: IngestKeyId,
}

/// What an export did.
#[derive(Debug)]
pub struct Ingested {
    /// Requests in the export (each span once), stored or already stored before.
    pub requests: usize,
    /// What the exporter is told was rejected or not stored, if anything.
    pub partial_success: Option<ExportTracePartialSuccess>,
}

/// Why an export was not taken.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Malformed(#[from] burnrate_otlp::DecodeError),
    /// The committer is behind; the exporter should retry later.
    #[error("the receiver is busy; retry later")]
    Busy,
    #[error(transparent)]
    App(#[from] Error),
}

impl App {
    pub async fn create_ingest_key(&self, actor: &Actor, name: &str) -> Result<NewIngestKey> {
        actor.require_admin()?;
        let name = label(name)?;
        let key = ScopedToken::generate(INGEST_KEY_PREFIX, actor.scope.org_id());
        let prefix = ScopedToken::display_prefix(INGEST_KEY_PREFIX, &key);
        let mut tx = self.store.tenant(actor.scope).await?;
        let id = tx.create_ingest_key(&name, &prefix, &token_hash(&key), actor.member).await?;
        tx.audit(actor.entry(AuditAction::IngestKeyCreated, "ingest_key", id.to_string(), json!({ "name": name })))
            .await?;
        tx.commit().await?;
        Ok(NewIngestKey { id, key, prefix })
    }

    pub async fn revoke_ingest_key(&self, actor: &Actor, id: IngestKeyId) -> Result<()> {
        self.admin_change(actor, ("ingest_key", id.to_string()), AuditAction::IngestKeyRevoked, async |tx| {
            Ok(tx.revoke_ingest_key(id).await?)
        })
        .await
    }

    /// The organization's ingest keys, revoked ones too (admins).
    pub async fn ingest_keys(&self, actor: &Actor) -> Result<Vec<IngestKeyRecord>> {
        actor.require_admin()?;
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let keys = tx.ingest_keys().await?;
        tx.commit().await?;
        Ok(keys)
    }

    /// The live ingest key `token` is; `None` for anything else (an API key among them).
    pub async fn ingester(&self, token: &str) -> Result<Option<Ingester>> {
        let Some(org) = ScopedToken::org(INGEST_KEY_PREFIX, token) else { return Ok(None) };
        let mut tx = self.store.read_tenant(OrgScope::trusted(org)).await?;
        let key = tx.ingest_key_by_hash(&token_hash(token)).await?;
        let scope = tx.scope();
        tx.commit().await?;
        let Some(key) = key.filter(|k| k.revoked_at.is_none()) else { return Ok(None) };
        if key.last_used_at.is_none_or(|t| Utc::now() - t > chrono::Duration::seconds(60)) {
            let mut tx = self.store.tenant(scope).await?;
            tx.touch_ingest_key(key.id).await?;
            tx.commit().await?;
        }
        Ok(Some(Ingester { scope, key_id: key.id }))
    }

    /// Stores the model calls of one OTLP export for `ingester`'s organization, priced, and
    /// answers once they are durable.
    pub async fn ingest(&self, ingester: Ingester, body: Body<'_>) -> std::result::Result<Ingested, IngestError> {
        let request = burnrate_otlp::decode(body)?;
        let reading = burnrate_otlp::read(&request, &self.tag_attributes(ingester.scope).await?);
        drop(request);
        let partial_success = reading.partial_success();
        let mut records = reading.records;
        let requests = records.len();
        metrics::counter!("burnrate_otlp_spans_total", "outcome" => "rejected")
            .increment(reading.rejected_spans as u64);
        metrics::counter!("burnrate_otlp_spans_total", "outcome" => "not_a_call").increment(reading.other_spans as u64);
        metrics::counter!("burnrate_otlp_content_dropped_total").increment(reading.content_dropped as u64);
        if !records.is_empty() {
            self.price_requests(ingester.scope, &mut records).await?;
            self.committer().store(ingester.scope, records).await?;
        }
        metrics::counter!("burnrate_otlp_spans_total", "outcome" => "accepted").increment(requests as u64);
        Ok(Ingested { requests, partial_success })
    }

    /// The attributes `scope` promotes to tags of its requests.
    async fn tag_attributes(&self, scope: OrgScope) -> Result<TagAttributes> {
        let mut tx = self.store.read_tenant(scope).await?;
        let names = tx.request_tag_attributes().await?;
        tx.commit().await?;
        // Checked when they were set; one that no longer reads is the store's fault.
        let names = names
            .iter()
            .map(|n| burnrate_otlp::AttributeName::parse(n).map_err(Error::internal))
            .collect::<Result<Vec<_>>>()?;
        Ok(TagAttributes::new(names))
    }

    /// Names each request's provider as cost lines do and prices it with the organization's book
    /// at the rates in force when it started.
    async fn price_requests(&self, scope: OrgScope, records: &mut [RequestRecord]) -> Result<()> {
        let book = self.syncer.prices.book_of(&self.store, scope).await.map_err(Error::internal)?;
        let mut by_kind: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for (i, r) in records.iter_mut().enumerate() {
            let kind = r.gen_ai_provider.as_deref().and_then(burnrate_otlp::source_kind);
            r.provider = kind.and_then(SourceKind::parse).map(|k| k.provider().reports_as.to_owned());
            if let Some(kind) = kind {
                by_kind.entry(kind).or_default().push(i);
            }
        }
        for (kind, at) in by_kind {
            let mut usage: Vec<UsageRecord> = at.iter().map(|i| usage_of(&records[*i])).collect();
            book.price_all(kind, &mut usage);
            for (i, priced) in at.into_iter().zip(usage) {
                records[i].computed_cost = priced.computed_cost;
                records[i].price_ref = priced.price_ref;
            }
        }
        Ok(())
    }

    fn committer(&self) -> &Committer {
        self.committer.get_or_init(|| Committer::spawn(self.syncer.lake.clone(), self.store.clone()))
    }
}

/// A request as the price book prices usage: one request's tokens in the bucket it started in.
fn usage_of(r: &RequestRecord) -> UsageRecord {
    UsageRecord {
        bucket_start: r.started_at,
        bucket_end: r.ended_at,
        provider_name: r.provider.clone().unwrap_or_default(),
        usage_type: r.operation.clone().unwrap_or_default(),
        model: r.model.clone(),
        input_uncached_tokens: r.input_uncached_tokens,
        input_cached_tokens: r.input_cached_tokens,
        input_cache_write_tokens: r.input_cache_write_tokens,
        output_tokens: r.output_tokens,
        requests: Some(1),
        ..UsageRecord::default()
    }
}

/// Held by the merge of request files running in this process.
static MERGING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One export waiting to be stored.
struct Pending {
    scope: OrgScope,
    records: Vec<RequestRecord>,
    stored: oneshot::Sender<std::result::Result<(), String>>,
}

/// Stores exports in groups (group commit): one lake append per organization for all the
/// exports that arrived within [`GROUP_WINDOW`] of the first, then every one of them answered.
#[derive(Clone)]
pub(crate) struct Committer {
    queue: mpsc::Sender<Pending>,
}

impl Committer {
    fn spawn(lake: burnrate_lake::Lake, store: burnrate_store::Store) -> Self {
        let (queue, mut arrivals) = mpsc::channel::<Pending>(QUEUED_EXPORTS);
        tokio::spawn(async move {
            let mut claims_forgotten = HashMap::new();
            while let Some(first) = arrivals.recv().await {
                let mut group = vec![first];
                let mut size = group[0].records.len();
                let deadline = tokio::time::Instant::now() + GROUP_WINDOW;
                while size < GROUP_REQUESTS {
                    match tokio::time::timeout_at(deadline, arrivals.recv()).await {
                        Ok(Some(next)) => {
                            size += next.records.len();
                            group.push(next);
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
                store_group(&lake, &store, group, &mut claims_forgotten).await;
            }
        });
        Self { queue }
    }

    async fn store(&self, scope: OrgScope, records: Vec<RequestRecord>) -> std::result::Result<(), IngestError> {
        let (stored, done) = oneshot::channel();
        self.queue.try_send(Pending { scope, records, stored }).map_err(|_| IngestError::Busy)?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(cause)) => Err(Error::internal(cause).into()),
            Err(_) => Err(Error::internal("the request committer stopped").into()),
        }
    }
}

/// Stores a group, one append per organization, and answers each export with its
/// organization's outcome.
async fn store_group(
    lake: &burnrate_lake::Lake,
    store: &burnrate_store::Store,
    group: Vec<Pending>,
    claims_forgotten: &mut HashMap<OrgScope, chrono::NaiveDate>,
) {
    let mut by_org: HashMap<OrgScope, Vec<Pending>> = HashMap::new();
    for pending in group {
        by_org.entry(pending.scope).or_default().push(pending);
    }
    for (scope, mut exports) in by_org {
        let records: Vec<RequestRecord> = exports.iter_mut().flat_map(|p| std::mem::take(&mut p.records)).collect();
        let started = std::time::Instant::now();
        let outcome = lake.append_requests(store, scope, records).await;
        metrics::histogram!("burnrate_otlp_commit_seconds").record(started.elapsed().as_secs_f64());
        let (compact, late) = outcome.as_ref().map(|a| (a.days.clone(), a.late_days.clone())).unwrap_or_default();
        let outcome = outcome.map(|_| ()).map_err(|e| format!("storing requests: {e}"));
        for export in exports {
            // An exporter that went away no longer waits for its answer.
            let _ = export.stored.send(outcome.clone());
        }
        // After the answers, and beside the next group: merging a day's files is no exporter's
        // wait. One merge at a time in this process bounds the memory merges take.
        for day in compact {
            let merge = if late.contains(&day) { Merge::All } else { Merge::Small };
            let (lake, store) = (lake.clone(), store.clone());
            tokio::spawn(async move {
                // Small files left now are merged after a later group; a late day's repeats wait.
                let _one = match merge {
                    Merge::Small => match MERGING.try_lock() {
                        Ok(one) => one,
                        Err(_) => return,
                    },
                    Merge::All => MERGING.lock().await,
                };
                if let Err(e) = lake.compact_requests(&store, scope, day, merge).await {
                    tracing::warn!(error = %e, %day, "merging a day's request files failed; they stay as they are");
                }
            });
        }
        // Once a day per organization: the claims of days no longer claimed go.
        let today = Utc::now().date_naive();
        if claims_forgotten.get(&scope) != Some(&today) {
            match lake.forget_old_claims(store, scope).await {
                Ok(_) => {
                    claims_forgotten.insert(scope, today);
                }
                Err(e) => tracing::warn!(error = %e, "forgetting old span claims failed; tried again later"),
            }
        }
    }
}

/// The committer is started on first use, inside the runtime that serves the receiver.
pub(crate) type CommitterCell = Arc<std::sync::OnceLock<Committer>>;
