-- The reconciliation gaps an organization was told of: a day × provider whose bill and priced
-- usage differ beyond its tolerance raises `reconciliation.gap` once, the first time it is seen.
CREATE TABLE reconciliation_gaps (
    org_id      BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    day         TEXT NOT NULL,
    provider    TEXT NOT NULL,
    raised_at   TEXT NOT NULL,
    PRIMARY KEY (org_id, day, provider)
);
