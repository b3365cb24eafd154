-- Webhook destinations (S14): the URL passed the egress guard when saved; the signing secret is
-- sealed like any other secret and shown to the tenant once.
CREATE TABLE webhooks (
    id             uuid PRIMARY KEY,
    org_id         uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    url            text NOT NULL,
    description    text NOT NULL,
    slack          boolean NOT NULL,
    secret_sealed  bytea NOT NULL,
    created_by     uuid NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX webhooks_org ON webhooks(org_id);

ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON webhooks USING (org_id = app_org()) WITH CHECK (org_id = app_org());
