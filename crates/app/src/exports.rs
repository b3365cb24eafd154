//! Exports: whatever leaves the instance as a file is recorded first (S16), with what was asked.

use burnrate_store::AuditAction;
use serde_json::Value;

use crate::{Actor, App, Result};

/// What is exported.
#[derive(Clone, Copy, Debug)]
pub enum Export {
    /// A SQL console query's result.
    Query,
    /// The explorer's view.
    Explorer,
    /// The FOCUS cost lines of a period.
    Costs,
}

impl App {
    /// Records that `actor` takes `what` away; `details` says which (a statement, a view, a
    /// period and format). Call before the first byte leaves.
    pub async fn record_export(&self, actor: &Actor, what: Export, details: Value) -> Result<()> {
        let action = match what {
            Export::Query => AuditAction::QueryExported,
            Export::Explorer => AuditAction::ExplorerExported,
            Export::Costs => AuditAction::CostsExported,
        };
        let mut tx = self.store.tenant(actor.scope).await?;
        tx.audit(actor.entry(action, "organization", actor.scope.org_id().to_string(), details)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the database answers (readiness); the error says why not.
    pub async fn ready(&self) -> std::result::Result<(), String> {
        self.store.ping().await.map_err(|e| e.to_string())
    }

    /// The lake's live files and their bytes, by table, over every organization, for the
    /// operator's metrics: one short read per organization.
    pub async fn lake_totals(&self) -> Result<std::collections::BTreeMap<String, (i64, i64)>> {
        let mut tx = self.store.read_instance().await?;
        let orgs = tx.list_org_ids().await?;
        tx.commit().await?;
        let mut totals: std::collections::BTreeMap<String, (i64, i64)> = std::collections::BTreeMap::new();
        for org in orgs {
            let mut tx = self.store.read_tenant(burnrate_store::OrgScope::trusted(org)).await?;
            for (table, files, bytes) in tx.live_lake_totals().await? {
                let total = totals.entry(table).or_default();
                total.0 += files;
                total.1 += bytes;
            }
            tx.commit().await?;
        }
        Ok(totals)
    }

    /// The background jobs due now, by kind, for the operator's metrics.
    pub async fn job_queue(&self) -> Result<Vec<burnrate_store::QueuedJobs>> {
        let mut tx = self.store.read_instance().await?;
        let queue = tx.job_queue(chrono::Utc::now().timestamp_millis()).await?;
        tx.commit().await?;
        Ok(queue)
    }
}
