//! An organization's settings: its reporting time zone (budget periods and days follow it) and
//! its approval policy. Sending more changes for approval applies at once; sending fewer is itself
//! a change another admin approves, or one admin could switch four eyes off alone (S17).

use burnrate_core::ReportingZone;
use burnrate_store::{AuditAction, Organization};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::policy::APPROVABLE;
use crate::{Actor, App, Change, Error, Result, Submitted};

/// A change of settings, as the API takes it; what is absent stays.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgSettingsChange {
    /// An IANA time zone name: budget periods and days follow it.
    pub reporting_time_zone: Option<String>,
    /// The changes that wait for a second admin (S17): any of `budget_raise`,
    /// `source_credentials`, `webhook_create`, `sql_credential_create`, `member_promote`,
    /// `price_override`.
    pub approval_actions: Option<Vec<String>>,
    /// How far (percent of the billed cost, 0 to 100) a day's bill may differ from its priced
    /// usage before reconciliation calls it a gap: a number or decimal text.
    #[schema(value_type = Option<String>)]
    pub reconciliation_tolerance_percent: Option<serde_json::Value>,
    /// Span attributes (up to 20) promoted to tags of the requests applications report, beside
    /// customer, feature, team, user and service; attributes that carry prompt or completion
    /// content are refused.
    pub request_tag_attributes: Option<Vec<String>>,
}

/// The organization and its settings.
pub struct OrgSettings {
    pub organization: Organization,
    pub reporting_time_zone: String,
    pub approval_actions: Vec<String>,
    /// Decimal text.
    pub reconciliation_tolerance_percent: String,
    pub request_tag_attributes: Vec<String>,
}

/// Attributes promoted to tags, at most this many.
const TAG_ATTRIBUTES: usize = 20;

/// Names of attributes to promote, checked: each a well-formed name carrying no content, no
/// more than [`TAG_ATTRIBUTES`], without repeats.
fn tag_attributes(names: &[String]) -> Result<Vec<String>> {
    if names.len() > TAG_ATTRIBUTES {
        return Err(Error::invalid(
            "request_tag_attributes",
            format!("request_tag_attributes: at most {TAG_ATTRIBUTES} attributes"),
        ));
    }
    let mut out = Vec::new();
    for name in names {
        let name = burnrate_otlp::AttributeName::parse(name)
            .map_err(|e| Error::invalid("request_tag_attributes", format!("request_tag_attributes: {e}")))?;
        if !out.contains(&name.as_str().to_owned()) {
            out.push(name.as_str().to_owned());
        }
    }
    Ok(out)
}

/// A tolerance as given: a number or decimal text from 0 to 100.
fn tolerance(value: &serde_json::Value) -> Result<rust_decimal::Decimal> {
    let text = match value {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.trim().to_owned(),
        _ => String::new(),
    };
    match rust_decimal::Decimal::from_str_exact(&text) {
        Ok(p) if !p.is_sign_negative() && p <= rust_decimal::Decimal::ONE_HUNDRED => Ok(p.normalize()),
        _ => Err(Error::invalid(
            "reconciliation_tolerance_percent",
            format!("reconciliation_tolerance_percent: {value} is not a percentage from 0 to 100"),
        )),
    }
}

impl App {
    pub async fn org_settings(&self, actor: &Actor) -> Result<OrgSettings> {
        let mut tx = self.store.read_instance().await?;
        let organization = tx.org(actor.scope.org_id()).await?.ok_or(Error::NotFound)?;
        let mut tx = tx.into_tenant(actor.scope).await?;
        let reporting_time_zone = tx.reporting_tz().await?;
        let approval_actions = tx.approval_actions().await?;
        let reconciliation_tolerance_percent = tx.reconciliation_tolerance().await?;
        let request_tag_attributes = tx.request_tag_attributes().await?;
        tx.commit().await?;
        Ok(OrgSettings {
            organization,
            reporting_time_zone,
            approval_actions,
            reconciliation_tolerance_percent,
            request_tag_attributes,
        })
    }

    /// Changes the settings, audited; fewer changes sent for approval go through the queue
    /// (`Queued`), everything else applies at once.
    pub async fn change_org_settings(&self, actor: &Actor, change: OrgSettingsChange) -> Result<Submitted> {
        actor.require_admin()?;
        let zone = change
            .reporting_time_zone
            .as_deref()
            .map(ReportingZone::parse)
            .transpose()
            .map_err(|e| Error::invalid("reporting_time_zone", format!("Reporting {e}.")))?;
        if let Some(actions) = &change.approval_actions
            && let Some(unknown) = actions.iter().find(|a| !APPROVABLE.contains(&a.as_str()))
        {
            return Err(Error::invalid(
                "approval_actions",
                format!("approval_actions: {unknown:?} is not one of {}", APPROVABLE.join(", ")),
            ));
        }
        let tolerance = change.reconciliation_tolerance_percent.as_ref().map(tolerance).transpose()?;
        let tags = change.request_tag_attributes.as_deref().map(tag_attributes).transpose()?;
        let org = actor.scope.org_id();
        let mut tx = self.store.tenant(actor.scope).await?;
        let mut details = serde_json::Map::new();
        if let Some(percent) = tolerance {
            let before = tx.reconciliation_tolerance().await?;
            tx.set_reconciliation_tolerance(&percent.to_string()).await?;
            details.insert(
                "reconciliation_tolerance_percent".into(),
                json!({ "from": before, "to": percent.to_string() }),
            );
        }
        if let Some(names) = tags {
            let before = tx.request_tag_attributes().await?;
            tx.set_request_tag_attributes(&names).await?;
            details.insert("request_tag_attributes".into(), json!({ "from": before, "to": names }));
        }
        if let Some(zone) = zone {
            let before = tx.reporting_tz().await?;
            tx.set_reporting_tz(zone.name()).await?;
            details.insert("reporting_time_zone".into(), json!({ "from": before, "to": zone.name() }));
        }
        let mut relaxed = None;
        if let Some(actions) = change.approval_actions {
            let before = tx.approval_actions().await?;
            if before.iter().any(|a| !actions.contains(a)) {
                relaxed = Some((actions, before));
            } else {
                tx.set_approval_actions(&actions).await?;
                details.insert("approval_actions".into(), json!({ "from": before, "to": actions }));
            }
        }
        if !details.is_empty() {
            tx.audit(actor.entry(AuditAction::OrgSettingsChanged, "organization", org.to_string(), details.into()))
                .await?;
        }
        tx.commit().await?;
        match relaxed {
            Some((actions, before)) => {
                let before = json!({ "approval_actions": before });
                self.submit(actor, Change::ApprovalPolicy { actions }, Some(before)).await
            }
            None => Ok(Submitted::Applied(org.as_uuid())),
        }
    }
}
