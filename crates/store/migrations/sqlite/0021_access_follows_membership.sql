-- Access follows membership (S22) and four eyes that stay open (S17, S23).
--
-- A request whose requester left, or is no longer an admin, is withdrawn: it can never be
-- approved. SQLite cannot alter a CHECK constraint, so the table is rebuilt with the new state.
CREATE TABLE approval_requests_next (
    id             BLOB PRIMARY KEY,
    org_id         BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    action         TEXT NOT NULL,
    summary        TEXT NOT NULL,
    change_sealed  BLOB NOT NULL,
    requested_by   BLOB NOT NULL,
    requested_at   TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'failed', 'withdrawn')),
    decided_by     BLOB,
    decided_at     TEXT,
    comment        TEXT,
    outcome        TEXT
);
INSERT INTO approval_requests_next SELECT id, org_id, action, summary, change_sealed, requested_by, requested_at,
    expires_at, state, decided_by, decided_at, comment, outcome FROM approval_requests;
DROP TABLE approval_requests;
ALTER TABLE approval_requests_next RENAME TO approval_requests;
CREATE INDEX approval_requests_org ON approval_requests(org_id, state, requested_at);

-- Until when the single-admin shortcut stays closed: set for the approval window whenever an
-- admin is demoted or removed, so that demoting the others cannot open it.
ALTER TABLE organizations ADD COLUMN four_eyes_until TEXT;

-- Promotions to admin or owner wait for a second admin, in every organization's policy.
UPDATE organizations SET approval_actions = json_insert(approval_actions, '$[#]', 'member_promote')
    WHERE NOT EXISTS (SELECT 1 FROM json_each(organizations.approval_actions) WHERE value = 'member_promote');
