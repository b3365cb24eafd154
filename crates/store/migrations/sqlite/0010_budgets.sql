-- Budgets: an amount (exact decimal text) of one currency per period, over a scope (JSON), with
-- the percentages at which alerts fire (JSON) and whether a forecast overrun alerts too.
CREATE TABLE budgets (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    amount          TEXT NOT NULL,
    currency        TEXT NOT NULL,
    period          TEXT NOT NULL,
    scope           TEXT NOT NULL,
    thresholds      TEXT NOT NULL,
    forecast_alert  INTEGER NOT NULL,
    created_by      BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    UNIQUE (org_id, name)
);
