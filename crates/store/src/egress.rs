//! Private networks an operator granted to an organization (S30): inside the instance's
//! ceiling (`BURNRATE_EGRESS_ALLOW`), reached by this organization's outbound calls only. The
//! networks are stored as the egress guard writes them, each checked against the ceiling when
//! granted.

use crate::accounts::now;
use crate::{Result, TenantTx, on};

impl TenantTx {
    /// The networks granted to this organization, in order.
    pub async fn egress_grants(&mut self) -> Result<Vec<String>> {
        let rows: Vec<String> = on!(&mut self.inner.tx, c => sqlx::query_scalar("SELECT network FROM egress_grants WHERE org_id = $1 ORDER BY network")
            .bind(self.scope.org_id().as_uuid()).fetch_all(c).await)?;
        Ok(rows)
    }

    /// Grants `network`; false when it was granted already.
    pub async fn grant_egress(&mut self, network: &str) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("INSERT INTO egress_grants (org_id, network, granted_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(self.scope.org_id().as_uuid()).bind(network).bind(now()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Takes `network` back; false when it was not granted.
    pub async fn revoke_egress(&mut self, network: &str) -> Result<bool> {
        let n = on!(&mut self.inner.tx, c => sqlx::query("DELETE FROM egress_grants WHERE org_id = $1 AND network = $2")
            .bind(self.scope.org_id().as_uuid()).bind(network).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
