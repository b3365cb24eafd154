-- The event types a webhook destination takes (JSON list of names; empty: every type).
ALTER TABLE webhooks ADD COLUMN events text NOT NULL DEFAULT '[]';
