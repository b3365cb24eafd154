-- Webhook destinations (S14): the URL passed the egress guard when saved; the signing secret is
-- sealed like any other secret and shown to the tenant once.
CREATE TABLE webhooks (
    id             BLOB PRIMARY KEY,
    org_id         BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    url            TEXT NOT NULL,
    description    TEXT NOT NULL,
    slack          INTEGER NOT NULL,
    secret_sealed  BLOB NOT NULL,
    created_by     BLOB NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX webhooks_org ON webhooks(org_id);
