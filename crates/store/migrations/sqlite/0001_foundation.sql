-- Foundation schema (SQLite). Ids are UUID blobs, times are RFC 3339 UTC text.
-- Tenant tables carry org_id; SQLite has no row-level security, so tenancy rests on the typed
-- OrgScope in code alone (PostgreSQL adds RLS on the same tables).

CREATE TABLE organizations (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE instance_keys (
    version     INTEGER PRIMARY KEY,
    kid         TEXT NOT NULL,
    wrapped     BLOB NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE org_keys (
    org_id      BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    kid         TEXT NOT NULL,
    wrapped     BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, version)
);

CREATE TABLE users (
    id                  BLOB PRIMARY KEY,
    email_sealed        BLOB NOT NULL,
    email_index         BLOB NOT NULL UNIQUE,
    email_index_version INTEGER NOT NULL,
    password_hash       TEXT NOT NULL,
    email_verified_at   TEXT,
    created_at          TEXT NOT NULL
);

CREATE TABLE memberships (
    org_id      BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

CREATE TABLE sessions (
    token_hash   BLOB PRIMARY KEY,
    handle       BLOB NOT NULL UNIQUE,
    user_id      BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id       BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    ip           TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE one_time_tokens (
    token_hash  BLOB PRIMARY KEY,
    purpose     TEXT NOT NULL CHECK (purpose IN ('password_reset', 'email_verification')),
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);

CREATE TABLE invitations (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    token_hash    BLOB NOT NULL UNIQUE,
    email_sealed  BLOB NOT NULL,
    email_index   BLOB NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    invited_by    BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    accepted_at   TEXT,
    revoked_at    TEXT
);
CREATE INDEX invitations_org ON invitations(org_id);

CREATE TABLE api_keys (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      BLOB NOT NULL UNIQUE,
    scope         TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    created_by    BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);
CREATE INDEX api_keys_org ON api_keys(org_id);

CREATE TABLE audit_log (
    org_id      BLOB NOT NULL,
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT,
    actor_label TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    details     TEXT NOT NULL,
    ip          TEXT,
    user_agent  TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- Mail waiting for delivery, sealed (it holds recipients and one-time links); deleted once sent.
CREATE TABLE outbox (
    id              BLOB PRIMARY KEY,
    sealed          BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
);
