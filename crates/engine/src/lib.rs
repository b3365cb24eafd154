//! SQL over one organization's data.
//!
//! Every query gets a DataFusion session of its own, built at its start:
//!
//! ```text
//!   catalog `burnrate`, schema `public`: costs, usage  ── the live lake files of this org only
//!   runtime: a greedy memory pool of BURNRATE_QUERY_MEMORY_LIMIT bytes
//!            a spill directory of its own under BURNRATE_SPILL_DIR, removed when the query ends
//! ```
//!
//! Nothing else is reachable: the session knows no other organization's files, URL tables are
//! off, and client SQL is planned with DDL, DML (`COPY` included) and statements (`SET`, …)
//! refused, so a client cannot point the engine at a path or change where it spills.

mod admission;
pub mod attribution;
mod bounded;
mod depth;
mod error;
mod federated;
mod information_schema;
mod metered;
mod org_tables;
mod pg_catalog;
mod pg_types;
pub mod reconciliation;
mod rewrite;
mod session;
pub mod spend;
mod spill;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use burnrate_core::{CostRecord, DATABASE_KINDS, RequestRecord, UsageRecord, schema_name};
use burnrate_lake::{COST_ROLLUP, Lake, LakeRow, USAGE_ROLLUP};
use burnrate_store::{LakeTable, OrgScope, Store};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::Statement;
use rust_decimal::Decimal;

pub use admission::{Busy, Concurrency};
pub use depth::MAX_EXPRESSION_DEPTH;
pub use error::EngineError;
pub use federated::check_certificate_authority;
pub use metered::FrontEnd;
pub use pg_types::{MAX_NUMERIC_SCALE, PgType, postgres_type};
pub use session::{Description, Outcome, Reader, SERVER_VERSION, SqlSession, SqlStatement};

/// Where the lake's object store is registered inside a session.
const LAKE_URL: &str = "lake://files/";
/// The prefix DataFusion gives each query's spill directory under the spill root.
const SPILL_PREFIX: &str = "datafusion-";

/// Per-query limits, from the instance's settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// `BURNRATE_QUERY_MEMORY_LIMIT`: the memory pool of one query, in bytes.
    pub memory_limit: usize,
    /// `BURNRATE_SPILL_DIR`: the root under which each query spills into a directory of its own.
    pub spill_dir: PathBuf,
    /// `BURNRATE_SPILL_MAX`: the most one query may spill, in bytes.
    pub max_spill_bytes: u64,
    /// `BURNRATE_SPILL_MAX_PER_ORG`: the most one organization's running queries may have
    /// spilled together, in bytes.
    pub max_spill_bytes_per_org: u64,
    /// A statement running longer is cancelled.
    pub statement_timeout: Duration,
    /// How many client queries run at once.
    pub concurrency: Concurrency,
}

impl EngineConfig {
    pub fn new(spill_dir: PathBuf) -> Self {
        Self {
            memory_limit: 512 << 20,
            spill_dir,
            max_spill_bytes: 20 << 30,
            max_spill_bytes_per_org: 20 << 30,
            statement_timeout: Duration::from_secs(300),
            concurrency: Concurrency::default(),
        }
    }
}

/// The SQL engine of an instance: shared settings, a session per query.
#[derive(Clone)]
pub struct Engine {
    config: Arc<EngineConfig>,
    admission: Arc<admission::Admission>,
    spills: Arc<spill::Spills>,
    store: Store,
    lake: Lake,
    databases: Option<Databases>,
}

/// What reaching an organization's own databases takes: the vault holding their passwords and
/// the egress guard their hosts must pass.
#[derive(Clone)]
struct Databases {
    vault: Arc<burnrate_store::Vault>,
    guard: burnrate_net::EgressGuard,
}

/// A running query's result stream. Its session — memory pool and spill directory included —
/// lives exactly as long as the stream: dropping it (the client went away, the statement timed
/// out) ends the query and removes the directory.
pub struct QueryStream {
    pub schema: SchemaRef,
    pub stream: SendableRecordBatchStream,
}

/// How a query is planned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// DataFusion's default: two partitions, hash joins (which cannot spill).
    Fast,
    /// The retry of a query that ran out of memory: sort-merge joins, which spill, and one
    /// partition, so one operator has the whole pool rather than competing with its twin.
    Frugal,
}

impl Engine {
    /// Creates the spill root and removes what a killed process left in it.
    pub fn new(config: EngineConfig, store: Store, lake: Lake) -> Result<Self, EngineError> {
        std::fs::create_dir_all(&config.spill_dir)
            .map_err(|e| EngineError::Setup(format!("BURNRATE_SPILL_DIR {}: {e}", config.spill_dir.display())))?;
        let swept = sweep_spill_root(&config.spill_dir)?;
        if swept > 0 {
            tracing::info!(swept, dir = %config.spill_dir.display(), "removed spill directories of earlier processes");
        }
        let admission = admission::Admission::new(config.concurrency);
        let spills = Arc::new(spill::Spills::new(config.max_spill_bytes_per_org));
        Ok(Self { config: Arc::new(config), admission, spills, store, lake, databases: None })
    }

    /// Serves each organization's database sources as `ext_<name>` schemas (without this, only
    /// the lake's tables are there).
    pub fn with_database_sources(
        mut self,
        vault: Arc<burnrate_store::Vault>,
        guard: burnrate_net::EgressGuard,
    ) -> Self {
        self.databases = Some(Databases { vault, guard });
        self
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The longest a statement may run.
    pub fn statement_timeout(&self) -> Duration {
        self.config.statement_timeout
    }

    /// The long-lived part of a session: the `burnrate` catalog (tables registered per query),
    /// `information_schema`, `pg_catalog` and the PostgreSQL functions. A client connection keeps
    /// one for its life, so the object ids `pg_catalog` hands out stay the same from one query to
    /// the next (psql's `\d` looks a table up by id in a second query).
    pub(crate) fn base_context(&self, pg_settings: Arc<dyn TableProvider>) -> Result<SessionContext, EngineError> {
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema("burnrate", "public")
            // Served by our own schema, which names types the PostgreSQL way.
            .with_information_schema(false)
            .with_target_partitions(2)
            // A batch at most a sixteenth of the pool (and DataFusion's 8,192 rows at most), so a
            // sort can hold a batch beside its merge reservation however small the pool.
            .with_batch_size((self.config.memory_limit >> 16).clamp(256, 8192));
        config.options_mut().sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
        // A sort reserves this much up front for merging its spills; DataFusion's 10 MiB default
        // would not fit a small pool at all.
        config.options_mut().execution.sort_spill_reservation_bytes = (self.config.memory_limit / 4).min(10 << 20);
        // Queries that read no table (`SELECT 1`, `SELECT version()`: pools' validation queries,
        // drivers' start-up) run on this context as it is, without a runtime of their own: a
        // pool of the query limit, and no disk, so nothing of theirs can spill.
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(self.config.memory_limit));
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::clone(&pool))
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()?;
        let mut state =
            SessionStateBuilder::new().with_config(config).with_runtime_env(runtime).with_default_features().build();
        let bound = bounded::BoundFunctions::new(pool);
        state.add_analyzer_rule(Arc::clone(&bound) as _);
        let ctx = SessionContext::new_with_state(state);
        ctx.add_optimizer_rule(bound);
        ctx.catalog("burnrate")
            .ok_or_else(|| EngineError::Setup("the session has no burnrate catalog".into()))?
            .register_schema("public", Arc::new(PublicSchema::default()))?;
        pg_catalog::install(&ctx, pg_settings)?;
        ctx.catalog("burnrate")
            .ok_or_else(|| EngineError::Setup("the session has no burnrate catalog".into()))?
            .register_schema(
                information_schema::INFORMATION_SCHEMA,
                Arc::new(information_schema::InformationSchema::new(ctx.state().catalog_list())),
            )?;
        // Empty until a query registers the live files: statements can be described (planned
        // for their schema) before the first query runs.
        let empty = |schema| -> Arc<dyn TableProvider> { Arc::new(EmptyTable::new(schema)) };
        let (costs, usage_rollup) = (empty(<CostRecord as LakeRow>::schema()), empty(USAGE_ROLLUP.schema()));
        let reconciliation = reconciliation::view(Arc::clone(&costs), Arc::clone(&usage_rollup), Decimal::ONE)?;
        for (name, table) in [
            ("costs", costs),
            (COST_ROLLUP.name, empty(COST_ROLLUP.schema())),
            ("usage", empty(<UsageRecord as LakeRow>::schema())),
            (USAGE_ROLLUP.name, usage_rollup),
            (reconciliation::TABLE, reconciliation),
            ("requests", empty(<RequestRecord as LakeRow>::schema())),
            (attribution::TABLE, Arc::new(attribution::AttributedCosts::new()) as Arc<dyn TableProvider>),
        ] {
            ctx.register_table(name, table)?;
        }
        Ok(ctx)
    }

    /// A context for one query of `scope` on `base`: the organization's tables as they are now,
    /// and a runtime of the query's own — memory pool, spill directory — that ends with it.
    pub(crate) async fn query_context(
        &self,
        base: &SessionContext,
        scope: OrgScope,
        plan: Plan,
        front_end: FrontEnd,
    ) -> Result<SessionContext, EngineError> {
        let mut tx = self.store.read_tenant(scope).await?;
        let costs = tx.live_lake_files(LakeTable::Costs).await?;
        let usage = tx.live_lake_files(LakeTable::Usage).await?;
        let requests = tx.live_lake_files(LakeTable::Requests).await?;
        let tolerance = tx.reconciliation_tolerance().await?;
        let sources = match self.databases {
            Some(_) => tx.sources().await?,
            None => Vec::new(),
        };
        // Read on every query: only when the organization has a database to reach.
        let grants = match sources.iter().any(|s| DATABASE_KINDS.contains(&s.kind.as_str())) {
            true => tx.egress_grants().await?,
            false => Vec::new(),
        };
        tx.commit().await?;
        self.register_database_sources(base, scope, &sources, &grants)?;
        // A file from before roll-ups stands in for its own: the roll-up's columns are the
        // table's, its sums the rows' sums, and its counts read as null — one row each.
        let rollups = |files: &[burnrate_store::LakeFile]| {
            files.iter().map(|f| f.rollup_path.clone().unwrap_or_else(|| f.path.clone())).collect::<Vec<_>>()
        };
        let (cost_rollups, usage_rollups) = (rollups(&costs), rollups(&usage));
        let root = self.lake.root();
        let cost_lines = lake_table(<CostRecord as LakeRow>::schema(), root, costs.iter().map(|f| f.path.as_str()))?;
        let usage_rollup = lake_table(USAGE_ROLLUP.schema(), root, usage_rollups.iter().map(String::as_str))?;
        let usage = lake_table(<UsageRecord as LakeRow>::schema(), root, usage.iter().map(|f| f.path.as_str()))?;
        // Stored only after it parsed: one that no longer does is the store's fault.
        let tolerance = Decimal::from_str_exact(&tolerance)
            .map_err(|_| EngineError::Setup(format!("the reconciliation tolerance {tolerance:?} does not read")))?;
        let reconciliation = reconciliation::view(Arc::clone(&cost_lines), Arc::clone(&usage_rollup), tolerance)?;
        for (name, table) in [
            ("costs", cost_lines),
            (COST_ROLLUP.name, lake_table(COST_ROLLUP.schema(), root, cost_rollups.iter().map(String::as_str))?),
            ("usage", usage),
            (USAGE_ROLLUP.name, usage_rollup),
            (reconciliation::TABLE, reconciliation),
            (
                "requests",
                lake_table(<RequestRecord as LakeRow>::schema(), root, requests.iter().map(|f| f.path.as_str()))?,
            ),
        ] {
            base.deregister_table(name)?;
            base.register_table(name, table)?;
        }

        // The query's own directory and cap, its files counted against its organization's too.
        let query_disk = DiskManagerBuilder::default()
            .with_mode(DiskManagerMode::Directories(vec![self.config.spill_dir.clone()]))
            .with_max_temp_directory_size(self.config.max_spill_bytes)
            .build()?;
        let files = spill::CountedFiles::new(Arc::new(query_disk), self.spills.of(scope.org_id()));
        let disk = DiskManagerBuilder::default()
            .with_temp_file_factory(Arc::new(files))
            .with_max_temp_directory_size(self.config.max_spill_bytes);
        let pool: Arc<dyn MemoryPool> = Arc::new(metered::MeteredPool::new(
            TrackConsumersPool::new(
                GreedyMemoryPool::new(self.config.memory_limit),
                std::num::NonZeroUsize::new(5).expect("five"),
            ),
            front_end,
        ));
        let runtime =
            RuntimeEnvBuilder::new().with_memory_pool(Arc::clone(&pool)).with_disk_manager_builder(disk).build_arc()?;
        runtime.register_object_store(&url::Url::parse(LAKE_URL).expect("lake URL"), Arc::clone(self.lake.objects()));
        let state = base.state();
        // The catalog already exists: building must not replace it with an empty default one.
        let mut config = state.config().clone().with_create_default_catalog_and_schema(false);
        if plan == Plan::Frugal {
            config = config.with_target_partitions(1);
        }
        config.options_mut().optimizer.prefer_hash_join = plan == Plan::Fast;
        let mut builder = SessionStateBuilder::new_from_existing(state).with_config(config).with_runtime_env(runtime);
        // The functions' values count against this query's pool, not the connection's.
        let bound = bounded::BoundFunctions::new(pool);
        if let Some(analyzer) = builder.analyzer() {
            analyzer.rules.retain(|r| r.name() != bounded::BoundFunctions::NAME);
            analyzer.rules.push(Arc::clone(&bound) as _);
        }
        if let Some(optimizer) = builder.optimizer() {
            optimizer.rules.retain(|r| r.name() != bounded::BoundFunctions::NAME);
            optimizer.rules.push(bound);
        }
        Ok(SessionContext::new_with_state(builder.build()))
    }

    /// Replaces the `ext_` schemas of `base` with the organization's database sources as they are.
    fn register_database_sources(
        &self,
        base: &SessionContext,
        scope: OrgScope,
        sources: &[burnrate_store::SourceRecord],
        grants: &[String],
    ) -> Result<(), EngineError> {
        let catalog =
            base.catalog("burnrate").ok_or_else(|| EngineError::Setup("the session has no burnrate catalog".into()))?;
        for name in catalog.schema_names().into_iter().filter(|n| n.starts_with("ext_")) {
            catalog.deregister_schema(&name, true)?;
        }
        let Some(databases) = &self.databases else { return Ok(()) };
        // The organization's hosts are reached within what was granted to it (S30).
        let guard = databases.guard.granted(grants).map_err(|e| EngineError::Setup(format!("egress grants: {e}")))?;
        for source in sources.iter().filter(|s| DATABASE_KINDS.contains(&s.kind.as_str())) {
            let remote = federated::RemoteSource::new(
                source,
                scope,
                self.store.clone(),
                Arc::clone(&databases.vault),
                guard.clone(),
            )
            .map_err(EngineError::Setup)?;
            catalog.register_schema(&schema_name(&source.name), Arc::new(federated::RemoteSchema::new(remote)))?;
        }
        Ok(())
    }

    /// Plans and starts `sql`, one query, for `scope` (for callers without a connection of their
    /// own). Client SQL may only read: see [`SqlSession::parse`].
    pub async fn query(&self, scope: OrgScope, sql: &str) -> Result<QueryStream, EngineError> {
        self.connect(scope, Reader::Member, "burnrate")?.query(sql).await
    }

    /// Runs `sql`, one query, for `scope` to the end and returns every batch.
    pub async fn collect(&self, scope: OrgScope, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
        self.connect(scope, Reader::Member, "burnrate")?.collect(sql).await
    }

    /// Plans and starts a parsed client statement with `parameters` bound to `$1…`.
    async fn start_statement(
        &self,
        base: &SessionContext,
        scope: OrgScope,
        statement: &Statement,
        parameters: Vec<ScalarValue>,
        (plan, front_end): (Plan, FrontEnd),
    ) -> Result<QueryStream, EngineError> {
        // Every client statement takes a slot, a table's or not: `SELECT repeat(…)` reads none.
        let slot = self.admission.admit(scope.org_id()).await?;
        let ctx = if reads_tables(statement) {
            self.query_context(base, scope, plan, front_end).await?
        } else {
            base.clone()
        };
        let mut logical = plan_locked(&ctx, statement).await?;
        if !parameters.is_empty() {
            logical = logical.with_param_values(parameters)?;
        }
        let frame = ctx.execute_logical_plan(logical).await?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let inner = frame.execute_stream().await?;
        Ok(QueryStream { schema, stream: Box::pin(admission::AdmittedStream { inner, _slot: slot }) })
    }

    /// [`Engine::start_statement`], tried once more the frugal way if it runs out of memory while
    /// planning or starting.
    pub(crate) async fn query_statement(
        &self,
        base: &SessionContext,
        scope: OrgScope,
        statement: &Statement,
        parameters: Vec<ScalarValue>,
        front_end: FrontEnd,
    ) -> Result<QueryStream, EngineError> {
        fast_then_frugal(|plan| self.start_statement(base, scope, statement, parameters.clone(), (plan, front_end)))
            .await
    }

    /// Runs a parsed query to the end, planned `plan`'s way.
    pub(crate) async fn collect_statement(
        &self,
        base: &SessionContext,
        scope: OrgScope,
        statement: &Statement,
        (plan, front_end): (Plan, FrontEnd),
    ) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
        use futures::TryStreamExt;
        let q = self.start_statement(base, scope, statement, Vec::new(), (plan, front_end)).await?;
        let batches: Vec<RecordBatch> = q.stream.try_collect().await?;
        Ok((q.schema, batches))
    }
}

/// Runs `run` planned the fast way and, if that runs out of memory, once more the frugal way.
pub(crate) async fn fast_then_frugal<T, F, Fut>(run: F) -> Result<T, EngineError>
where
    F: Fn(Plan) -> Fut,
    Fut: std::future::Future<Output = Result<T, EngineError>>,
{
    match run(Plan::Fast).await {
        Err(e) if e.is_out_of_memory() => {
            tracing::info!(error = %e, "query ran out of memory; running it again with sort-merge joins on one partition");
            run(Plan::Frugal).await
        }
        other => other,
    }
}

/// Whether `statement` names any table or table function (then it needs the organization's
/// files and a runtime of its own); `SELECT 1` does not.
fn reads_tables(statement: &Statement) -> bool {
    datafusion::sql::sqlparser::ast::visit_relations(statement, |_| std::ops::ControlFlow::Break(())).is_break()
}

/// What client SQL may do: read. DDL (`CREATE EXTERNAL TABLE`), DML (`COPY … TO`, `INSERT`) and
/// statements (`SET` of engine settings) are refused by the planner.
fn locked() -> SQLOptions {
    SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
}

/// Plans a parsed statement in `ctx` under the lock.
pub(crate) async fn plan_locked(ctx: &SessionContext, statement: &Statement) -> Result<LogicalPlan, EngineError> {
    let wrapped = datafusion::sql::parser::Statement::Statement(Box::new(statement.clone()));
    let plan = ctx.state().statement_to_plan(wrapped).await.map_err(EngineError::refused_or_plan)?;
    locked().verify_plan(&plan).map_err(EngineError::refused_or_plan)?;
    Ok(plan)
}

/// The `public` schema, listing every table but the roll-ups: those are the dashboards' and
/// reconciliation's way to the sums, queried by name. Listed, one would sit in every client's
/// table tree beside its table with the same columns and far fewer rows, and invite counting them.
#[derive(Debug, Default)]
struct PublicSchema(datafusion::catalog::MemorySchemaProvider);

#[async_trait::async_trait]
impl datafusion::catalog::SchemaProvider for PublicSchema {
    fn table_names(&self) -> Vec<String> {
        self.0.table_names().into_iter().filter(|n| n != COST_ROLLUP.name && n != USAGE_ROLLUP.name).collect()
    }

    async fn table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        self.0.table(name).await
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        self.0.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> datafusion::error::Result<Option<Arc<dyn TableProvider>>> {
        self.0.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.0.table_exist(name)
    }
}

/// The table a query over the organization's costs reads when it needs only `columns` of them:
/// `cost_rollup` when it has every one (the same sums from far fewer rows), else `costs`. Only
/// sums agree between the two: the roll-up has fewer rows, so counts of rows do not.
pub(crate) fn cost_table_reading(columns: &[&str]) -> &'static str {
    if columns.iter().all(|c| COST_ROLLUP.columns.contains(c)) { COST_ROLLUP.name } else { "costs" }
}

/// A lake table over exactly the files at `paths` (the live set taken at query start), which
/// are objects `{root}{path}` of the lake's store.
fn lake_table<'a>(
    schema: SchemaRef,
    root: &str,
    paths: impl Iterator<Item = &'a str>,
) -> Result<Arc<dyn TableProvider>, EngineError> {
    let urls = paths.map(|p| ListingTableUrl::parse(format!("{LAKE_URL}{root}{p}"))).collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Ok(Arc::new(EmptyTable::new(schema)));
    }
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// Removes every query spill directory under `root` (only ours: they carry DataFusion's prefix).
/// Called at start, when no query of this process can be running.
fn sweep_spill_root(root: &Path) -> Result<usize, EngineError> {
    let mut swept = 0;
    let entries = std::fs::read_dir(root)
        .map_err(|e| EngineError::Setup(format!("BURNRATE_SPILL_DIR {}: {e}", root.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(SPILL_PREFIX) && entry.path().is_dir() {
            std::fs::remove_dir_all(entry.path())
                .map_err(|e| EngineError::Setup(format!("cannot remove {}: {e}", entry.path().display())))?;
            swept += 1;
        }
    }
    Ok(swept)
}
