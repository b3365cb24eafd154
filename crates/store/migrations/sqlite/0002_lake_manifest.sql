-- The lake's manifest: which Parquet files hold an organization's data ("catalog in SQL, data in
-- Parquet"). A sync records its files as pending, writes them, then in one transaction marks the
-- files they replace superseded and its own live. Dates are ISO text (they compare correctly).
CREATE TABLE lake_files (
    id             BLOB PRIMARY KEY,
    org_id         BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    table_name     TEXT NOT NULL CHECK (table_name IN ('costs', 'usage')),
    source_id      BLOB NOT NULL,
    window_start   TEXT NOT NULL,
    window_end     TEXT NOT NULL,
    path           TEXT NOT NULL UNIQUE,
    rows           INTEGER NOT NULL,
    bytes          INTEGER NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'live', 'superseded')),
    created_at     TEXT NOT NULL,
    superseded_at  TEXT
);
CREATE INDEX lake_files_by_state ON lake_files(org_id, table_name, state);
