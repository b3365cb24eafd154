-- Budgets: an amount (exact decimal text) of one currency per period, over a scope (JSON), with
-- the percentages at which alerts fire (JSON) and whether a forecast overrun alerts too.
CREATE TABLE budgets (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            text NOT NULL,
    amount          text NOT NULL,
    currency        text NOT NULL,
    period          text NOT NULL,
    scope           text NOT NULL,
    thresholds      text NOT NULL,
    forecast_alert  boolean NOT NULL,
    created_by      uuid NOT NULL,
    created_at      timestamptz NOT NULL,
    UNIQUE (org_id, name)
);

ALTER TABLE budgets ENABLE ROW LEVEL SECURITY;
ALTER TABLE budgets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON budgets USING (org_id = app_org()) WITH CHECK (org_id = app_org());
