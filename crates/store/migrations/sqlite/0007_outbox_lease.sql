-- A delivery attempt leases its messages, so two instances never send the same mail at once.
ALTER TABLE outbox ADD COLUMN locked_until_ms INTEGER;
