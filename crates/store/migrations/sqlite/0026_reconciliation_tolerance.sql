-- How far (in percent of the billed cost) a day's bill may differ from its priced usage before
-- reconciliation calls it a gap; set with PATCH /api/v1/org.
ALTER TABLE organizations ADD COLUMN reconciliation_tolerance_percent TEXT NOT NULL DEFAULT '1';
