-- The approval queue (S17): which actions an organization sends for approval, and the requests.
-- A request holds the proposed change sealed (it may carry a secret) and a summary without
-- secrets to show approvers; it is decided once (the state moves away from pending exactly once).
ALTER TABLE organizations ADD COLUMN approval_actions text NOT NULL
    DEFAULT '["budget_raise","source_credentials","webhook_create","sql_credential_create"]';

CREATE TABLE approval_requests (
    id             uuid PRIMARY KEY,
    org_id         uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    action         text NOT NULL,
    summary        text NOT NULL,
    change_sealed  bytea NOT NULL,
    requested_by   uuid NOT NULL,
    requested_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    state          text NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'failed')),
    decided_by     uuid,
    decided_at     timestamptz,
    comment        text,
    outcome        text
);
CREATE INDEX approval_requests_org ON approval_requests(org_id, state, requested_at);

ALTER TABLE approval_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE approval_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON approval_requests USING (org_id = app_org()) WITH CHECK (org_id = app_org());
