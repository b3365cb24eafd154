-- Private networks an operator granted to an organization (`burnrate egress grant`), each inside
-- BURNRATE_EGRESS_ALLOW: its webhooks, provider base URLs and database sources reach them; no
-- other organization does.
CREATE TABLE egress_grants (
    org_id      BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    network     TEXT NOT NULL,
    granted_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, network)
);
