-- Price catalogues an operator imported (`burnrate prices import FILE --apply`): the newest is the
-- instance's catalogue, which synced usage is priced with; without one, the catalogue burnrate
-- ships. Kept as a record of what priced what.
CREATE TABLE price_catalogues (
    id           BLOB PRIMARY KEY,
    source       TEXT NOT NULL,
    version      TEXT NOT NULL,
    checksum     TEXT NOT NULL,
    body         TEXT NOT NULL,
    imported_at  TEXT NOT NULL
);
CREATE INDEX price_catalogues_imported ON price_catalogues(imported_at);
