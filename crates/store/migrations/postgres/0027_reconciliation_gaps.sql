-- The reconciliation gaps an organization was told of: see the SQLite migration of the same name.
CREATE TABLE reconciliation_gaps (
    org_id      uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    day         date NOT NULL,
    provider    text NOT NULL,
    raised_at   timestamptz NOT NULL,
    PRIMARY KEY (org_id, day, provider)
);

ALTER TABLE reconciliation_gaps ENABLE ROW LEVEL SECURITY;
ALTER TABLE reconciliation_gaps FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON reconciliation_gaps USING (org_id = app_org()) WITH CHECK (org_id = app_org());
