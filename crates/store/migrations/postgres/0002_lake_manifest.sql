-- The lake's manifest (see the SQLite migration of the same name).
CREATE TABLE lake_files (
    id             uuid PRIMARY KEY,
    org_id         uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    table_name     text NOT NULL CHECK (table_name IN ('costs', 'usage')),
    source_id      uuid NOT NULL,
    window_start   date NOT NULL,
    window_end     date NOT NULL,
    path           text NOT NULL UNIQUE,
    rows           bigint NOT NULL,
    bytes          bigint NOT NULL,
    state          text NOT NULL CHECK (state IN ('pending', 'live', 'superseded')),
    created_at     timestamptz NOT NULL,
    superseded_at  timestamptz
);
CREATE INDEX lake_files_by_state ON lake_files(org_id, table_name, state);

ALTER TABLE lake_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE lake_files FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON lake_files USING (org_id = app_org()) WITH CHECK (org_id = app_org());
