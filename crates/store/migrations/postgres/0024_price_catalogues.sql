-- Price catalogues an operator imported: see the SQLite migration of the same name.
CREATE TABLE price_catalogues (
    id           uuid PRIMARY KEY,
    source       text NOT NULL,
    version      text NOT NULL,
    checksum     text NOT NULL,
    body         text NOT NULL,
    imported_at  timestamptz NOT NULL
);
CREATE INDEX price_catalogues_imported ON price_catalogues(imported_at);
