-- An organization's own prices: see the SQLite migration of the same name.
CREATE TABLE price_overrides (
    id              uuid PRIMARY KEY,
    org_id          uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    provider        text NOT NULL,
    model           text NOT NULL,
    effective_from  date NOT NULL,
    effective_to    date,
    discount_percent text,
    rates           text,
    note            text NOT NULL,
    created_by      uuid NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX price_overrides_org ON price_overrides(org_id);

ALTER TABLE price_overrides ENABLE ROW LEVEL SECURITY;
ALTER TABLE price_overrides FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON price_overrides USING (org_id = app_org()) WITH CHECK (org_id = app_org());

UPDATE organizations SET approval_actions = (approval_actions::jsonb || '["price_override"]'::jsonb)::text
    WHERE NOT (approval_actions::jsonb ? 'price_override');
ALTER TABLE organizations ALTER COLUMN approval_actions
    SET DEFAULT '["budget_raise","source_credentials","webhook_create","sql_credential_create","member_promote","price_override"]';
