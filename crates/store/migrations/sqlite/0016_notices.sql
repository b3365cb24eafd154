-- Notices from the instance's operators to every organization (S20), such as a change to the
-- sub-processor list: emailed to admins when published, shown in the UI. Kept as a record.
CREATE TABLE notices (
    id            BLOB PRIMARY KEY,
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    effective_on  TEXT NOT NULL,
    published_by  BLOB NOT NULL REFERENCES operators(id),
    published_at  TEXT NOT NULL
);
CREATE INDEX notices_published ON notices(published_at);
