-- The reconciliation tolerance: see the SQLite migration of the same name.
ALTER TABLE organizations ADD COLUMN reconciliation_tolerance_percent text NOT NULL DEFAULT '1';
