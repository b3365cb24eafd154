-- Access follows membership (S22) and four eyes that stay open (S17, S23).
--
-- A request whose requester left, or is no longer an admin, is withdrawn: it can never be
-- approved.
ALTER TABLE approval_requests DROP CONSTRAINT approval_requests_state_check;
ALTER TABLE approval_requests ADD CONSTRAINT approval_requests_state_check
    CHECK (state IN ('pending', 'approved', 'rejected', 'failed', 'withdrawn'));

-- Until when the single-admin shortcut stays closed: set for the approval window whenever an
-- admin is demoted or removed, so that demoting the others cannot open it.
ALTER TABLE organizations ADD COLUMN four_eyes_until timestamptz;

-- Promotions to admin or owner wait for a second admin, in every organization's policy.
UPDATE organizations SET approval_actions = (approval_actions::jsonb || '["member_promote"]'::jsonb)::text
    WHERE NOT (approval_actions::jsonb ? 'member_promote');
ALTER TABLE organizations ALTER COLUMN approval_actions
    SET DEFAULT '["budget_raise","source_credentials","webhook_create","sql_credential_create","member_promote"]';
