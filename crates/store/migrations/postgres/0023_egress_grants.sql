-- Private networks an operator granted to an organization (`burnrate egress grant`), each inside
-- BURNRATE_EGRESS_ALLOW: its webhooks, provider base URLs and database sources reach them; no
-- other organization does.
CREATE TABLE egress_grants (
    org_id      uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    network     text NOT NULL,
    granted_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, network)
);

ALTER TABLE egress_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE egress_grants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON egress_grants USING (org_id = app_org()) WITH CHECK (org_id = app_org());
