//! Domain types of burnrate that every other crate shares.
//!
//! This crate does no IO. Its types can only be built valid: an [`EmailAddress`] is normalized on
//! construction, a [`NewPassword`] has passed the password policy, ids are UUIDv7 newtypes that
//! cannot be mixed up with one another.

mod budget;
mod cost;
pub mod csv;
mod database;
mod email;
mod ids;
mod money;
mod names;
mod password;
mod request;
mod role;
mod zone;

pub use budget::{BudgetPeriod, BudgetScope, Thresholds, ThresholdsError};
pub use cost::{ChargeCategory, CostRecord, SyncWindow, UsageRecord, WindowError};
pub use database::{DATABASE_KINDS, DatabaseConfig, DatabaseTls, schema_name};
pub use email::{EmailAddress, EmailError};
pub use ids::{
    ApiKeyId, BudgetId, DeliveryId, IngestKeyId, InvitationId, OperatorId, OrgId, SourceId, SqlCredentialId,
    SqlCredentialIdError, SupportGrantId, UserId, WebhookId,
};
pub use money::{Currency, MONEY_SCALE, Money, MoneyError, Rounding, parse_decimal};
pub use names::{NameError, OrgName};
pub use password::{NewPassword, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS, PasswordError};
pub use request::{RequestRecord, SpanKey};
pub use role::{ApiScope, ParseRoleError, Role};
pub use zone::{Period, ReportingZone, ZoneError};
