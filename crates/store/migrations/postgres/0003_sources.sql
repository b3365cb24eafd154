-- Connected providers (see the SQLite migration of the same name).
CREATE TABLE sources (
    id               uuid PRIMARY KEY,
    org_id           uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    kind             text NOT NULL,
    name             text NOT NULL,
    config           text NOT NULL,
    secret_sealed    bytea NOT NULL,
    secret_hint      text NOT NULL,
    secret_set_at    timestamptz NOT NULL,
    paused           boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    last_attempt_at  timestamptz,
    last_success_at  timestamptz,
    last_error       text,
    UNIQUE (org_id, name)
);

ALTER TABLE sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE sources FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON sources USING (org_id = app_org()) WITH CHECK (org_id = app_org());
