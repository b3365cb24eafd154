-- Background jobs (see the SQLite migration of the same name). Instance-wide: not a tenant table.
CREATE TABLE jobs (
    id            uuid PRIMARY KEY,
    kind          text NOT NULL,
    org_id        uuid,
    payload       text NOT NULL,
    unique_key    text UNIQUE,
    state         text NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    run_at_ms     bigint NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    locked_by     text,
    locked_until_ms bigint,
    last_error    text,
    created_at_ms bigint NOT NULL
);
CREATE INDEX jobs_due ON jobs(state, run_at_ms);
