-- Alerts: each organization's reporting time zone (budget periods follow it), the members a
-- budget emails, the alert events that fired (one per budget × kind × threshold × period: the
-- unique key is what makes an alert fire once), and webhook deliveries with their attempts.
ALTER TABLE organizations ADD COLUMN reporting_tz text NOT NULL DEFAULT 'UTC';
ALTER TABLE budgets ADD COLUMN email_members text NOT NULL DEFAULT '[]';

CREATE TABLE alert_events (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    budget_id    uuid NOT NULL REFERENCES budgets(id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('threshold', 'forecast', 'anomaly')),
    threshold    integer NOT NULL,
    period_start date NOT NULL,
    period_end   date NOT NULL,
    spend        text NOT NULL,
    forecast     text,
    currency     text NOT NULL,
    fired_at     timestamptz NOT NULL,
    UNIQUE (org_id, budget_id, kind, threshold, period_start)
);
CREATE INDEX alert_events_org ON alert_events(org_id, fired_at);

ALTER TABLE alert_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON alert_events USING (org_id = app_org()) WITH CHECK (org_id = app_org());

-- One event to one webhook. `state`: pending (queued or between retries), delivered, dead (every
-- attempt failed; shown in the dead-letter list until redelivered). The payload holds no secret.
CREATE TABLE deliveries (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    webhook_id    uuid NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_type    text NOT NULL,
    payload       text NOT NULL,
    state         text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    committed_at_ms bigint NOT NULL,
    finished_at   timestamptz
);
CREATE INDEX deliveries_webhook ON deliveries(org_id, webhook_id, created_at);

ALTER TABLE deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON deliveries USING (org_id = app_org()) WITH CHECK (org_id = app_org());

CREATE TABLE delivery_attempts (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    delivery_id  uuid NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    at           timestamptz NOT NULL,
    status       integer,
    latency_ms   bigint NOT NULL,
    error        text
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery_id, at);

ALTER TABLE delivery_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE delivery_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON delivery_attempts USING (org_id = app_org()) WITH CHECK (org_id = app_org());

-- Each worker claims jobs of its own kinds.
CREATE INDEX jobs_kind_due ON jobs(kind, state, run_at_ms);
