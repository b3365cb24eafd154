-- Request-level ingestion (OTLP): per-organization ingest keys, which write requests and read
-- nothing; the spans already stored, so an exporter's retry stores each span once; and the lake
-- manifest taking a third table, `requests` (the CHECK cannot be altered in SQLite: the table is
-- rebuilt with the same rows).
CREATE TABLE ingest_keys (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      BLOB NOT NULL UNIQUE,
    created_by    BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);
CREATE INDEX ingest_keys_org ON ingest_keys(org_id);

-- One row per stored span: trace id (16 bytes) and span id (8 bytes), and the day of the file
-- that holds it.
CREATE TABLE ingested_spans (
    org_id    BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    trace_id  BLOB NOT NULL,
    span_id   BLOB NOT NULL,
    day       TEXT NOT NULL,
    PRIMARY KEY (org_id, trace_id, span_id)
) WITHOUT ROWID;

CREATE TABLE lake_files_new (
    id             BLOB PRIMARY KEY,
    org_id         BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    table_name     TEXT NOT NULL CHECK (table_name IN ('costs', 'usage', 'requests')),
    source_id      BLOB NOT NULL,
    window_start   TEXT NOT NULL,
    window_end     TEXT NOT NULL,
    path           TEXT NOT NULL UNIQUE,
    rows           INTEGER NOT NULL,
    bytes          INTEGER NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'live', 'superseded')),
    created_at     TEXT NOT NULL,
    superseded_at  TEXT,
    max_day        TEXT,
    rollup_path    TEXT
);
INSERT INTO lake_files_new (id, org_id, table_name, source_id, window_start, window_end, path, rows, bytes, state, created_at, superseded_at, max_day, rollup_path)
    SELECT id, org_id, table_name, source_id, window_start, window_end, path, rows, bytes, state, created_at, superseded_at, max_day, rollup_path FROM lake_files;
DROP TABLE lake_files;
ALTER TABLE lake_files_new RENAME TO lake_files;
CREATE INDEX lake_files_by_state ON lake_files(org_id, table_name, state);
