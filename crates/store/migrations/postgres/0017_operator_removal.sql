-- An operator who leaves is disabled, not deleted (see the SQLite migration of the same name).
ALTER TABLE operators ADD COLUMN disabled_at timestamptz;
