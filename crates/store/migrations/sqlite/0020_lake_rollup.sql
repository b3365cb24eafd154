-- A costs file's roll-up: the same lines summed by period, provider, service, project, model,
-- charge category and source, written beside it by the same sync and live and collected with it.
-- NULL for files written before roll-ups existed (readers use the file itself).
ALTER TABLE lake_files ADD COLUMN rollup_path TEXT;
