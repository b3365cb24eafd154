-- Alerts: each organization's reporting time zone (budget periods follow it), the members a
-- budget emails, the alert events that fired (one per budget × kind × threshold × period: the
-- unique key is what makes an alert fire once), and webhook deliveries with their attempts.
ALTER TABLE organizations ADD COLUMN reporting_tz TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE budgets ADD COLUMN email_members TEXT NOT NULL DEFAULT '[]';

CREATE TABLE alert_events (
    id           BLOB PRIMARY KEY,
    org_id       BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    budget_id    BLOB NOT NULL REFERENCES budgets(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('threshold', 'forecast', 'anomaly')),
    threshold    INTEGER NOT NULL,
    period_start TEXT NOT NULL,
    period_end   TEXT NOT NULL,
    spend        TEXT NOT NULL,
    forecast     TEXT,
    currency     TEXT NOT NULL,
    fired_at     TEXT NOT NULL,
    UNIQUE (org_id, budget_id, kind, threshold, period_start)
);
CREATE INDEX alert_events_org ON alert_events(org_id, fired_at);

-- One event to one webhook. `state`: pending (queued or between retries), delivered, dead (every
-- attempt failed; shown in the dead-letter list until redelivered). The payload holds no secret.
CREATE TABLE deliveries (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    webhook_id    BLOB NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_type    TEXT NOT NULL,
    payload       TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    committed_at_ms INTEGER NOT NULL,
    finished_at   TEXT
);
CREATE INDEX deliveries_webhook ON deliveries(org_id, webhook_id, created_at);

CREATE TABLE delivery_attempts (
    id           BLOB PRIMARY KEY,
    org_id       BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    delivery_id  BLOB NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    at           TEXT NOT NULL,
    status       INTEGER,
    latency_ms   INTEGER NOT NULL,
    error        TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery_id, at);

-- Each worker claims jobs of its own kinds.
CREATE INDEX jobs_kind_due ON jobs(kind, state, run_at_ms);
