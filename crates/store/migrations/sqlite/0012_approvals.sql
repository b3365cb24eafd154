-- The approval queue (S17): which actions an organization sends for approval, and the requests.
-- A request holds the proposed change sealed (it may carry a secret) and a summary without
-- secrets to show approvers; it is decided once (the state moves away from pending exactly once).
ALTER TABLE organizations ADD COLUMN approval_actions TEXT NOT NULL
    DEFAULT '["budget_raise","source_credentials","webhook_create","sql_credential_create"]';

CREATE TABLE approval_requests (
    id             BLOB PRIMARY KEY,
    org_id         BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    action         TEXT NOT NULL,
    summary        TEXT NOT NULL,
    change_sealed  BLOB NOT NULL,
    requested_by   BLOB NOT NULL,
    requested_at   TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'failed')),
    decided_by     BLOB,
    decided_at     TEXT,
    comment        TEXT,
    outcome        TEXT
);
CREATE INDEX approval_requests_org ON approval_requests(org_id, state, requested_at);
