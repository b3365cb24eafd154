-- An operator who leaves is disabled, not deleted: the grants they asked for or approved stay in
-- the record, and the account can no longer log in.
ALTER TABLE operators ADD COLUMN disabled_at TEXT;
