//! The explorer: the organization's costs grouped by one dimension, filtered by any, over a range
//! of days in the organization's reporting time zone, by hour, day, week or month — a table, a
//! chart and the same rows as CSV. Every choice is in the URL, so a view can be shared. It reads
//! through the SQL engine, as SQL and exports do.

mod ui;

use axum::Router;
use axum::routing::get;

use crate::AppState;

/// The pages.
pub(super) fn pages() -> Router<AppState> {
    Router::new().route("/explore", get(ui::explore))
}
