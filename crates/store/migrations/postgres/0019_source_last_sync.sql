-- What the last successful sync did, in words (lines written, requests made, what the provider
-- charges for them), for the sources page.
ALTER TABLE sources ADD COLUMN last_sync_summary text;
