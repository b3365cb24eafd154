-- The last day a lake file holds data for: a source's freshness per table is the newest of its live files.
ALTER TABLE lake_files ADD COLUMN max_day date;
