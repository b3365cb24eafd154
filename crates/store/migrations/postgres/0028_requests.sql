-- Request-level ingestion: see the SQLite migration of the same name.
CREATE TABLE ingest_keys (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name          text NOT NULL,
    prefix        text NOT NULL,
    key_hash      bytea NOT NULL UNIQUE,
    created_by    uuid NOT NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX ingest_keys_org ON ingest_keys(org_id);
ALTER TABLE ingest_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON ingest_keys USING (org_id = app_org()) WITH CHECK (org_id = app_org());

CREATE TABLE ingested_spans (
    org_id    uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    trace_id  bytea NOT NULL,
    span_id   bytea NOT NULL,
    day       date NOT NULL,
    PRIMARY KEY (org_id, trace_id, span_id)
);
ALTER TABLE ingested_spans ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingested_spans FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON ingested_spans USING (org_id = app_org()) WITH CHECK (org_id = app_org());

ALTER TABLE lake_files DROP CONSTRAINT lake_files_table_name_check;
ALTER TABLE lake_files ADD CONSTRAINT lake_files_table_name_check CHECK (table_name IN ('costs', 'usage', 'requests'));
