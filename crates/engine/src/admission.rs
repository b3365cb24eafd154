//! Admission control: how many queries run at once, for each organization and for the instance.
//! A query's memory is bounded by its pool, so the instance's limit times the pool bounds what
//! all queries together may hold; the organization's limit keeps one tenant from taking every
//! slot. A query over either limit waits briefly for a slot, then is refused as busy — never
//! queued without end behind someone else's work.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burnrate_core::OrgId;
use tokio::sync::Notify;

use crate::EngineError;

/// How many queries may run at once, and how long one waits for a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concurrency {
    /// `BURNRATE_QUERY_CONCURRENCY`: queries running at once on the instance.
    pub instance: usize,
    /// `BURNRATE_QUERY_CONCURRENCY_PER_ORG`: queries one organization runs at once.
    pub per_org: usize,
    /// How long a query waits for a slot before it is refused as busy.
    pub wait: Duration,
}

impl Default for Concurrency {
    /// Eight queries in all (eight pools of the default 512 MiB are 4 GiB at the most); for one
    /// organization, one a pair of cores — a query already runs on two partitions, so more at
    /// once only share the same cores, and every other tenant's query waits behind them (on two
    /// cores, another organization's answer took 27× its time alone beside four of one tenant's,
    /// 1.8× beside one, while that tenant's own throughput stayed the same: bench/RESULTS.md);
    /// a query waiting up to ten seconds for a slot, so that a dashboard's panels, asked at once,
    /// take their turns rather than fail.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self { instance: 8, per_org: (cores / 2).clamp(1, 8), wait: Duration::from_secs(10) }
    }
}

/// Which limit a refused query met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Busy {
    Organization(usize),
    Instance(usize),
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Busy::Organization(n) => write!(f, "your organization already runs {n} queries at once, its limit"),
            Busy::Instance(n) => write!(f, "the instance already runs {n} queries at once, its limit"),
        }
    }
}

#[derive(Default)]
struct Running {
    total: usize,
    by_org: HashMap<OrgId, usize>,
}

/// The slots of one instance.
pub(crate) struct Admission {
    limits: Concurrency,
    running: Mutex<Running>,
    freed: Notify,
}

/// A query's slot, given back when dropped (with the query's stream).
pub(crate) struct Admitted {
    admission: Arc<Admission>,
    org: OrgId,
}

/// A query's stream holding its slot: the slot is free again when the stream is dropped — read
/// to its end, abandoned by the client, or cancelled at the statement timeout.
pub(crate) struct AdmittedStream {
    pub(crate) inner: datafusion::execution::SendableRecordBatchStream,
    pub(crate) _slot: Admitted,
}

impl futures::Stream for AdmittedStream {
    type Item = datafusion::error::Result<datafusion::arrow::array::RecordBatch>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl datafusion::physical_plan::RecordBatchStream for AdmittedStream {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.inner.schema()
    }
}

impl Admission {
    pub(crate) fn new(limits: Concurrency) -> Arc<Self> {
        Arc::new(Self { limits, running: Mutex::default(), freed: Notify::new() })
    }

    /// A slot for a query of `org`: at once, or when one frees within the wait, or busy.
    pub(crate) async fn admit(self: &Arc<Self>, org: OrgId) -> Result<Admitted, EngineError> {
        let deadline = tokio::time::Instant::now() + self.limits.wait;
        loop {
            // Registered before looking, so a slot freed in between is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let full = {
                let mut running = self.running.lock().expect("no panic holds the slots");
                let mine = running.by_org.get(&org).copied().unwrap_or(0);
                if mine >= self.limits.per_org {
                    Busy::Organization(self.limits.per_org)
                } else if running.total >= self.limits.instance {
                    Busy::Instance(self.limits.instance)
                } else {
                    running.total += 1;
                    *running.by_org.entry(org).or_default() += 1;
                    return Ok(Admitted { admission: Arc::clone(self), org });
                }
            };
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(EngineError::Busy(full, self.limits.wait));
            }
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut running = self.admission.running.lock().expect("no panic holds the slots");
        running.total -= 1;
        if let Some(mine) = running.by_org.get_mut(&self.org) {
            *mine -= 1;
            if *mine == 0 {
                running.by_org.remove(&self.org);
            }
        }
        drop(running);
        self.admission.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> OrgId {
        OrgId::from(uuid::Uuid::new_v4())
    }

    #[tokio::test]
    async fn an_organization_over_its_limit_waits_then_is_busy_while_another_is_admitted() {
        let wait = Duration::from_millis(300);
        let admission = Admission::new(Concurrency { instance: 3, per_org: 2, wait });
        let (a, b) = (org(), org());
        let first = admission.admit(a).await.unwrap();
        let _second = admission.admit(a).await.unwrap();
        let started = tokio::time::Instant::now();
        let refused = admission.admit(a).await.err().expect("a third of a's is refused");
        assert!(started.elapsed() >= wait, "after waiting the stated time");
        assert!(matches!(refused, EngineError::Busy(Busy::Organization(2), _)), "{refused}");
        let _other = admission.admit(b).await.expect("b has slots of its own");

        // The instance is full now: b's second waits for a slot, and gets the one a gives back.
        let waiting = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move { admission.admit(b).await.map(|_| ()) }
        });
        tokio::time::sleep(wait / 3).await;
        assert!(!waiting.is_finished(), "it waits while the instance is full");
        drop(first);
        waiting.await.unwrap().expect("admitted when a slot freed within the wait");
    }

    #[tokio::test]
    async fn the_instance_limit_holds_across_organizations() {
        let admission = Admission::new(Concurrency { instance: 2, per_org: 2, wait: Duration::from_millis(500) });
        let _held = [admission.admit(org()).await.unwrap(), admission.admit(org()).await.unwrap()];
        let refused = admission.admit(org()).await.err().expect("a third organization waits, then is busy");
        assert_eq!(
            refused.to_string(),
            "busy: the instance already runs 2 queries at once, its limit; waited 0.5 s; retry shortly"
        );
    }
}
