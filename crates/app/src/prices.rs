//! The instance's price catalogue: which one prices usage, and an operator's import of a newer
//! one — checked whole, its difference shown before it applies, and recorded in every
//! organization's audit log when it does (their computed costs change with it).

use std::sync::Arc;

use burnrate_core::OrgId;
use burnrate_prices::{Catalogue, Change};
pub use burnrate_store::PriceOverrideRecord;
use burnrate_store::{Actor, AuditAction, NewAuditEntry, OrgScope, Store};
use serde_json::json;

use crate::{Error, Result};

/// The largest catalogue taken: the shipped one is well under a megabyte.
pub const MAX_CATALOGUE_BYTES: usize = 32 << 20;

pub struct PriceCatalogues {
    store: Store,
}

/// The catalogue that prices usage, and where it came from.
pub struct Current {
    pub catalogue: Arc<Catalogue>,
    /// When an operator imported it; `None` for the one burnrate ships.
    pub imported_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What an import found, and whether it applied.
pub struct Import {
    pub source: String,
    pub version: String,
    pub checksum: String,
    /// The current catalogue's source and version.
    pub replacing: String,
    pub changes: Vec<Change>,
    /// The organizations whose audit log records it; `None` for a dry run or no change.
    pub applied_to: Option<usize>,
}

impl PriceCatalogues {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The newest imported catalogue, else the shipped one.
    pub async fn current(&self) -> Result<Current> {
        let mut tx = self.store.read_instance().await?;
        let stored = tx.newest_price_catalogue().await?;
        tx.commit().await?;
        match stored {
            Some(s) => {
                let catalogue = Catalogue::parse(s.body.as_bytes())
                    .map_err(|e| Error::internal(format!("the imported price catalogue {}: {e}", s.version)))?;
                Ok(Current { catalogue: Arc::new(catalogue), imported_at: Some(s.imported_at) })
            }
            None => Ok(Current {
                catalogue: Catalogue::shipped().map_err(|e| Error::internal(e.to_string()))?,
                imported_at: None,
            }),
        }
    }

    /// Reads `json` as a catalogue and compares it with the current one; with `apply`, makes it
    /// the instance's and records that in every organization's audit log, in one transaction.
    /// A catalogue identical to the current one changes nothing.
    pub async fn import(&self, json: &[u8], apply: bool, command: &str) -> Result<Import> {
        if json.len() > MAX_CATALOGUE_BYTES {
            return Err(Error::invalid("file", format!("more than {} MB", MAX_CATALOGUE_BYTES >> 20)));
        }
        let text = std::str::from_utf8(json).map_err(|_| Error::invalid("file", "not UTF-8 text"))?;
        let newer = Catalogue::parse(json).map_err(|e| Error::invalid("file", e.to_string()))?;
        let current = self.current().await?;
        let changes = current.catalogue.changes_to(&newer);
        let mut import = Import {
            source: newer.source.clone(),
            version: newer.version.clone(),
            checksum: newer.checksum.clone(),
            replacing: format!("{} {}", current.catalogue.source, current.catalogue.version),
            changes,
            applied_to: None,
        };
        if !apply || newer.checksum == current.catalogue.checksum {
            return Ok(import);
        }
        let mut tx = self.store.instance().await?;
        let stored = tx.record_price_catalogue(&newer.source, &newer.version, &newer.checksum, text).await?;
        let orgs: Vec<OrgId> = tx.list_org_ids().await?;
        let (added, removed, repriced) = import.changes.iter().fold((0, 0, 0), |(a, r, p), c| match c {
            Change::Added(_) => (a + 1, r, p),
            Change::Removed(_) => (a, r + 1, p),
            Change::Repriced(_) => (a, r, p + 1),
        });
        for org in &orgs {
            let mut t = tx.into_tenant(OrgScope::trusted(*org)).await?;
            t.audit(NewAuditEntry {
                actor: Actor::system(command),
                action: AuditAction::PriceCatalogueImported,
                target_type: Some("price_catalogue"),
                target_id: Some(stored.id.to_string()),
                details: json!({
                    "source": newer.source, "version": newer.version, "checksum": newer.checksum,
                    "replacing": import.replacing,
                    "models_added": added, "models_removed": removed, "models_repriced": repriced,
                }),
                ip: None,
                user_agent: None,
            })
            .await?;
            tx = t.into_instance();
        }
        tx.commit().await?;
        import.applied_to = Some(orgs.len());
        Ok(import)
    }
}

/// An organization's own price, as the API takes it: a discount or rates, for one model.
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOverride {
    /// The catalogue's provider id (`openai`, `anthropic`, `aws`, `azure`, `google`, `openrouter`).
    pub provider: String,
    /// The model as its usage names it.
    pub model: String,
    /// `YYYY-MM-DD`, the first day it holds.
    pub effective_from: String,
    /// The last day it holds; open-ended when absent.
    #[serde(default)]
    pub effective_to: Option<String>,
    /// Percent off the catalogue's price: more than 0, at most 100 (decimal text).
    #[serde(default)]
    pub discount_percent: Option<String>,
    /// Rates by price key (`input_mtok`: dollars per million input tokens, …), decimal text.
    #[serde(default)]
    pub rates: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    pub note: Option<String>,
}

impl crate::App {
    /// The organization's own prices, oldest first: every member may read them.
    pub async fn price_overrides(&self, actor: &crate::Actor) -> Result<Vec<PriceOverrideRecord>> {
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let overrides = tx.price_overrides().await?;
        tx.commit().await?;
        Ok(overrides)
    }

    /// Sets prices of the organization's own for a model, after another admin's approval where
    /// the policy asks for it (`price_override`). Usage synced in its days is priced with it.
    pub async fn add_price_override(
        &self,
        actor: &crate::Actor,
        new: &NewOverride,
    ) -> Result<crate::approvals::Submitted> {
        actor.require_admin()?;
        // The syncs' own copy of the instance's catalogue: read again only when an import changed it.
        let book = self.syncer.prices.book(&self.store).await.map_err(Error::internal)?;
        let catalogue = book.catalogue().ok_or_else(|| Error::internal("no price catalogue loads"))?;
        let change = check_override(catalogue, new)?;
        self.submit(actor, change, None).await
    }

    /// Removes one of the organization's own prices — under the approval policy, as setting one
    /// is: usage synced from then on is priced by the catalogue again.
    pub async fn remove_price_override(
        &self,
        actor: &crate::Actor,
        id: uuid::Uuid,
    ) -> Result<crate::approvals::Submitted> {
        actor.require_admin()?;
        let own = self.price_overrides(actor).await?;
        let found = own.iter().find(|o| o.id == id).ok_or(Error::NotFound)?;
        let what = format!("{}/{} from {}", found.provider, found.model, found.effective_from);
        let before = serde_json::json!({
            "provider": found.provider, "model": found.model, "effective_from": found.effective_from,
            "effective_to": found.effective_to, "discount_percent": found.discount_percent,
            "rates": found.rates, "note": found.note,
        });
        self.submit(actor, crate::approvals::Change::PriceOverrideRemove { id, what }, Some(before)).await
    }
}

/// The change `new` asks for, every value checked.
fn check_override(catalogue: &Catalogue, new: &NewOverride) -> Result<crate::approvals::Change> {
    let provider = new.provider.trim();
    if catalogue.provider(provider).is_none_or(|p| p.id != provider) {
        let known: Vec<&str> = catalogue.providers().iter().map(|p| p.id.as_str()).collect();
        return Err(Error::invalid(
            "provider",
            format!("provider: {provider:?} is not a provider of the catalogue ({})", known.join(", ")),
        ));
    }
    let model = new.model.trim();
    if model.is_empty() || model.chars().count() > 200 || model.chars().any(char::is_control) {
        return Err(Error::invalid("model", "model: 1 to 200 characters on one line, as its usage names it"));
    }
    let day = crate::parse_day;
    let effective_from = day("effective_from", &new.effective_from)?;
    let effective_to =
        new.effective_to.as_deref().filter(|t| !t.trim().is_empty()).map(|t| day("effective_to", t)).transpose()?;
    if effective_to.is_some_and(|to| to < effective_from) {
        return Err(Error::invalid("effective_to", "effective_to: before effective_from"));
    }
    let amount = |field: &'static str, text: &str| -> Result<rust_decimal::Decimal> {
        match rust_decimal::Decimal::from_str_exact(text.trim()) {
            Ok(d) if !d.is_sign_negative() => Ok(d.normalize()),
            _ => Err(Error::invalid(field, format!("{field}: {text:?} is not a non-negative decimal"))),
        }
    };
    let (discount_percent, rates) = match (&new.discount_percent, &new.rates) {
        (Some(p), None) => {
            let p = amount("discount_percent", p)?;
            if p.is_zero() || p > rust_decimal::Decimal::ONE_HUNDRED {
                return Err(Error::invalid("discount_percent", "discount_percent: more than 0, at most 100"));
            }
            (Some(p.to_string()), None)
        }
        (None, Some(rates)) if !rates.is_empty() => {
            let mut checked = std::collections::BTreeMap::new();
            for (key, value) in rates {
                if !catalogue.prices_class(key) {
                    return Err(Error::invalid(
                        "rates",
                        format!("rates: {key:?} is not a price key (input_mtok, cache_read_mtok, output_mtok, …)"),
                    ));
                }
                checked.insert(key.clone(), amount("rates", value)?.to_string());
            }
            (None, Some(serde_json::to_string(&checked).map_err(Error::internal)?))
        }
        _ => return Err(Error::invalid("discount_percent", "give either discount_percent or rates (not both)")),
    };
    let note = new.note.as_deref().unwrap_or_default().trim().to_owned();
    if note.chars().count() > 500 {
        return Err(Error::invalid("note", "note: at most 500 characters"));
    }
    Ok(crate::approvals::Change::PriceOverride {
        provider: provider.to_owned(),
        model: model.to_owned(),
        effective_from,
        effective_to,
        discount_percent,
        rates,
        note,
    })
}

/// Which days of synced usage to price again, and whether to write the new prices.
#[derive(Clone, Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepriceInput {
    /// `YYYY-MM-DD`: the first day; its whole month is priced again.
    pub from: String,
    /// `YYYY-MM-DD`: the last day; its whole month is priced again.
    pub to: String,
    /// Show the difference only (the default); `false` writes the new prices.
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// What pricing synced usage again changes, by provider and model.
#[derive(Clone, Debug, Default)]
pub struct Repriced {
    /// The whole months priced again.
    pub from: chrono::NaiveDate,
    pub until: chrono::NaiveDate,
    pub rows: usize,
    /// Rows whose computed cost (or whether they are priced at all) changes.
    pub changed: usize,
    /// Computed cost before and after, of the rows priced both times.
    pub before: rust_decimal::Decimal,
    pub after: rust_decimal::Decimal,
    /// Rows unpriced before and priced now, and the other way round.
    pub newly_priced: usize,
    pub newly_unpriced: usize,
    /// `(provider, model, before, after)` where they differ.
    pub models: Vec<(String, String, rust_decimal::Decimal, rust_decimal::Decimal)>,
    pub applied: bool,
}

impl crate::App {
    /// Prices the organization's synced usage of the months from `from` to `to` again at the
    /// current rates (the catalogue and its own prices) and shows the difference; with
    /// `dry_run: false` writes it, audited. Never done silently: a changed price or override
    /// reprices history only when asked.
    pub async fn reprice(&self, actor: &crate::Actor, input: &RepriceInput) -> Result<Repriced> {
        use burnrate_core::{SyncWindow, UsageRecord};
        use std::collections::BTreeMap;
        actor.require_admin()?;
        let day = crate::parse_day;
        let (from, to) = (day("from", &input.from)?, day("to", &input.to)?);
        let window = SyncWindow::new(from, to + chrono::Duration::days(1))
            .map_err(|_| Error::invalid("to", "to: before from"))?
            .whole_months();
        if window.days() > 732 {
            return Err(Error::invalid("to", "to: at most two years at a time"));
        }
        let apply = input.dry_run == Some(false);
        let syncer = &self.syncer;
        let book = syncer.prices.book_of(&self.store, actor.scope).await.map_err(Error::internal)?;
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let sources = tx.sources().await?;
        tx.commit().await?;
        let mut out = Repriced { from: window.start(), until: window.end(), applied: apply, ..Default::default() };
        let mut models: BTreeMap<(String, String), (rust_decimal::Decimal, rust_decimal::Decimal)> = BTreeMap::new();
        let mut applied_sources = Vec::new();
        // A source changed by a sync meanwhile stops the run; what was written before is audited.
        let mut stopped = None;
        for source in sources.iter().filter(|s| !burnrate_core::DATABASE_KINDS.contains(&s.kind.as_str())) {
            let (records, read) = syncer
                .lake
                .source_records::<UsageRecord>(&self.store, actor.scope, source.id, window.start()..window.end())
                .await
                .map_err(Error::internal)?;
            let mut repriced = records.clone();
            book.price_all(&source.kind, &mut repriced);
            let mut changed = 0;
            for (old, new) in records.iter().zip(&repriced) {
                out.rows += 1;
                if old.computed_cost != new.computed_cost || old.price_ref != new.price_ref {
                    changed += 1;
                }
                match (old.computed_cost, new.computed_cost) {
                    (Some(b), Some(a)) => {
                        out.before += b;
                        out.after += a;
                        let m = models
                            .entry((old.provider_name.clone(), old.model.clone().unwrap_or_default()))
                            .or_default();
                        m.0 += b;
                        m.1 += a;
                    }
                    (None, Some(_)) => out.newly_priced += 1,
                    (Some(_), None) => out.newly_unpriced += 1,
                    (None, None) => {}
                }
            }
            out.changed += changed;
            if apply && changed > 0 {
                let mut writer = syncer
                    .lake
                    .writer::<UsageRecord>(&self.store, actor.scope, source.id, window)
                    .map_err(Error::internal)?;
                writer.push(repriced).await.map_err(Error::internal)?;
                let files = writer.finish().await.map_err(Error::internal)?;
                let committed = syncer
                    .lake
                    .commit_unchanged(
                        &self.store,
                        actor.scope,
                        burnrate_store::LakeTable::Usage,
                        source.id,
                        window,
                        &files,
                        &read,
                    )
                    .await;
                match committed {
                    Ok(_) => applied_sources.push(json!({ "source": source.name, "rows_changed": changed })),
                    Err(burnrate_lake::LakeError::Changed(why)) => {
                        stopped = Some(Error::Conflict(why));
                        break;
                    }
                    Err(other) => {
                        stopped = Some(Error::internal(other));
                        break;
                    }
                }
            }
        }
        out.models = models.into_iter().filter(|(_, (b, a))| b != a).map(|((p, m), (b, a))| (p, m, b, a)).collect();
        if apply {
            let mut tx = self.store.tenant(actor.scope).await?;
            tx.audit(actor.entry(
                AuditAction::UsageRepriced,
                "usage",
                format!("{}..{}", window.start(), window.end()),
                json!({ "from": window.start(), "until": window.end(), "rows_changed": out.changed,
                        "before": out.before.normalize().to_string(), "after": out.after.normalize().to_string(),
                        "sources": applied_sources }),
            ))
            .await?;
            tx.commit().await?;
        }
        match stopped {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}
