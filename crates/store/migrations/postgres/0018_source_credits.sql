-- A prepaid account's credits left (OpenRouter), as decimal text in USD, and when it was read.
ALTER TABLE sources ADD COLUMN credits_remaining text;
ALTER TABLE sources ADD COLUMN credits_checked_at timestamptz;
