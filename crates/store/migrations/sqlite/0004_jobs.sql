-- Background jobs, shared by every instance. Times are Unix milliseconds: compared in SQL, and
-- the same in both databases. A job with a unique key exists once however many instances enqueue
-- it (one sync per source and schedule tick); a claim is a lease that a crashed worker lets lapse.
CREATE TABLE jobs (
    id            BLOB PRIMARY KEY,
    kind          TEXT NOT NULL,
    org_id        BLOB,
    payload       TEXT NOT NULL,
    unique_key    TEXT UNIQUE,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    run_at_ms     INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    locked_by     TEXT,
    locked_until_ms INTEGER,
    last_error    TEXT,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs(state, run_at_ms);
