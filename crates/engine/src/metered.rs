//! A query's memory pool that reports the query to the operator's metrics when it ends (the
//! pool lives exactly as long as the query's runtime): which front end ran it, how long it ran
//! and the most memory it held at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use datafusion::common::Result;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation};

/// Where a query came from, for the metrics: `wire` (the Postgres endpoint), `sql` (the API's
/// and console's SQL), `app` (the pages' and API's own reads).
pub type FrontEnd = &'static str;

#[derive(Debug)]
pub(crate) struct MeteredPool<P> {
    inner: P,
    front_end: FrontEnd,
    started: Instant,
    high_water: AtomicUsize,
}

impl<P: MemoryPool> MeteredPool<P> {
    pub(crate) fn new(inner: P, front_end: FrontEnd) -> Self {
        Self { inner, front_end, started: Instant::now(), high_water: AtomicUsize::new(0) }
    }

    fn note_reserved(&self) {
        self.high_water.fetch_max(self.inner.reserved(), Ordering::Relaxed);
    }
}

impl<P: MemoryPool> std::fmt::Display for MeteredPool<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.inner, f)
    }
}

impl<P: MemoryPool> MemoryPool for MeteredPool<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        self.note_reserved();
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.inner.try_grow(reservation, additional)?;
        self.note_reserved();
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

impl<P> Drop for MeteredPool<P> {
    fn drop(&mut self) {
        let front_end = self.front_end;
        metrics::counter!("burnrate_queries_total", "front_end" => front_end).increment(1);
        metrics::histogram!("burnrate_query_duration_seconds", "front_end" => front_end)
            .record(self.started.elapsed().as_secs_f64());
        metrics::histogram!("burnrate_query_memory_high_water_bytes", "front_end" => front_end)
            .record(self.high_water.load(Ordering::Relaxed) as f64);
    }
}
