-- A destination that keeps failing is paused: its failed attempts in a row, and since when it
-- is paused (deliveries to it wait in the dead-letter list until an admin resumes it).
ALTER TABLE webhooks ADD COLUMN failures_in_a_row integer NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN paused_at timestamptz;
