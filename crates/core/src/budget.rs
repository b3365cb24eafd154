//! Budgets: an amount of one currency per period, over a scope of the organization's spend, with
//! the percentages of it at which people are told.

use serde::{Deserialize, Serialize};

/// How often a budget starts again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    Month,
    Quarter,
    Year,
}

impl BudgetPeriod {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "month" => Some(BudgetPeriod::Month),
            "quarter" => Some(BudgetPeriod::Quarter),
            "year" => Some(BudgetPeriod::Year),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPeriod::Month => "month",
            BudgetPeriod::Quarter => "quarter",
            BudgetPeriod::Year => "year",
        }
    }
}

/// The percentages of a budget at which an alert fires: 1 to 10 of them, each from 1 to 1000,
/// kept sorted and without repeats.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<u32>", into = "Vec<u32>")]
pub struct Thresholds(Vec<u32>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("thresholds: 1 to 10 percentages, each from 1 to 1000")]
pub struct ThresholdsError;

impl Thresholds {
    pub fn new(mut percents: Vec<u32>) -> Result<Self, ThresholdsError> {
        percents.sort_unstable();
        percents.dedup();
        if percents.is_empty() || percents.len() > 10 || percents.iter().any(|p| !(1..=1000).contains(p)) {
            return Err(ThresholdsError);
        }
        Ok(Self(percents))
    }

    pub fn percents(&self) -> &[u32] {
        &self.0
    }
}

/// 50, 80 and 100 %.
impl Default for Thresholds {
    fn default() -> Self {
        Self(vec![50, 80, 100])
    }
}

impl TryFrom<Vec<u32>> for Thresholds {
    type Error = ThresholdsError;
    fn try_from(v: Vec<u32>) -> Result<Self, ThresholdsError> {
        Self::new(v)
    }
}

impl From<Thresholds> for Vec<u32> {
    fn from(t: Thresholds) -> Self {
        t.0
    }
}

/// Which spend a budget counts; every field left out counts all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetScope {
    /// A FOCUS provider name (`OpenAI`, `Anthropic`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// A connected source's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// A project or workspace (`sub_account_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// A model, or a family with `*` for any run of characters (`gpt-4o*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
}

impl BudgetScope {
    /// Each value 1 to 200 characters without control characters.
    pub fn validate(&self) -> Result<(), String> {
        for (field, value) in [
            ("provider", &self.provider),
            ("source_id", &self.source_id),
            ("project", &self.project),
            ("model", &self.model),
            ("api_key_id", &self.api_key_id),
        ] {
            if let Some(v) = value
                && (v.is_empty() || v.chars().count() > 200 || v.chars().any(char::is_control))
            {
                return Err(format!("scope.{field}: 1 to 200 characters without control characters"));
            }
        }
        Ok(())
    }
}
