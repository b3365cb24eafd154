-- Notices from the instance's operators (S20): see the SQLite migration of the same name.
CREATE TABLE notices (
    id            uuid PRIMARY KEY,
    title         text NOT NULL,
    body          text NOT NULL,
    effective_on  date NOT NULL,
    published_by  uuid NOT NULL REFERENCES operators(id),
    published_at  timestamptz NOT NULL
);
CREATE INDEX notices_published ON notices(published_at);
