-- Foundation schema (PostgreSQL). Run by the owner role (BURNRATE_DATABASE_ADMIN_URL); the
-- application connects as a separate non-owner role that `burnrate migrate` grants rights to.
-- Every tenant table has FORCE ROW LEVEL SECURITY: a query that has not set app.org_id for its
-- transaction sees and changes nothing.

CREATE FUNCTION app_org() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('app.org_id', true), '')::uuid $$;
CREATE FUNCTION app_user() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('app.user_id', true), '')::uuid $$;

CREATE TABLE organizations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE instance_keys (
    version     bigint PRIMARY KEY,
    kid         text NOT NULL,
    wrapped     bytea NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE org_keys (
    org_id      uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    version     bigint NOT NULL,
    kid         text NOT NULL,
    wrapped     bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, version)
);

CREATE TABLE users (
    id                  uuid PRIMARY KEY,
    email_sealed        bytea NOT NULL,
    email_index         bytea NOT NULL UNIQUE,
    email_index_version bigint NOT NULL,
    password_hash       text NOT NULL,
    email_verified_at   timestamptz,
    created_at          timestamptz NOT NULL
);

CREATE TABLE memberships (
    org_id      uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY,
    handle       uuid NOT NULL UNIQUE,
    user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id       uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    ip           text,
    user_agent   text
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE one_time_tokens (
    token_hash  bytea PRIMARY KEY,
    purpose     text NOT NULL CHECK (purpose IN ('password_reset', 'email_verification')),
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

CREATE TABLE invitations (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    token_hash    bytea NOT NULL UNIQUE,
    email_sealed  bytea NOT NULL,
    email_index   bytea NOT NULL,
    role          text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    invited_by    uuid NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    accepted_at   timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX invitations_org ON invitations(org_id);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name          text NOT NULL,
    prefix        text NOT NULL,
    key_hash      bytea NOT NULL UNIQUE,
    scope         text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    created_by    uuid NOT NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_org ON api_keys(org_id);

CREATE TABLE audit_log (
    org_id      uuid NOT NULL,
    seq         bigint NOT NULL,
    at          timestamptz NOT NULL,
    actor_type  text NOT NULL,
    actor_id    text,
    actor_label text NOT NULL,
    action      text NOT NULL,
    target_type text,
    target_id   text,
    details     text NOT NULL,
    ip          text,
    user_agent  text,
    prev_hash   text NOT NULL,
    hash        text NOT NULL,
    PRIMARY KEY (org_id, seq)
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
-- Row triggers do not fire on TRUNCATE.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE outbox (
    id              uuid PRIMARY KEY,
    sealed          bytea NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text
);

-- Row-level security on every tenant table.
ALTER TABLE org_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE org_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON org_keys USING (org_id = app_org()) WITH CHECK (org_id = app_org());

-- A user sees their own memberships in every organization (to choose one at login); everything
-- else about an organization's members needs that organization's scope.
ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON memberships USING (org_id = app_org() OR user_id = app_user())
    WITH CHECK (org_id = app_org());

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON invitations USING (org_id = app_org()) WITH CHECK (org_id = app_org());

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON api_keys USING (org_id = app_org()) WITH CHECK (org_id = app_org());

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON audit_log USING (org_id = app_org()) WITH CHECK (org_id = app_org());
