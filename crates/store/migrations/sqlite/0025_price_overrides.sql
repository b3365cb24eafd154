-- An organization's own prices (negotiated rates, discounts), effective-dated, winning over the
-- instance's catalogue for one provider's model: usage synced in their days is priced with them.
CREATE TABLE price_overrides (
    id              BLOB PRIMARY KEY,
    org_id          BLOB NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    provider        TEXT NOT NULL,
    model           TEXT NOT NULL,
    effective_from  TEXT NOT NULL,
    effective_to    TEXT,
    -- One of the two: a discount in percent on the catalogue's price, or rates by price key.
    discount_percent TEXT,
    rates           TEXT,
    note            TEXT NOT NULL,
    created_by      BLOB NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX price_overrides_org ON price_overrides(org_id);

-- An organization's own prices change its computed costs: they wait for a second admin, in
-- every organization's policy.
UPDATE organizations SET approval_actions = json_insert(approval_actions, '$[#]', 'price_override')
    WHERE NOT EXISTS (SELECT 1 FROM json_each(organizations.approval_actions) WHERE value = 'price_override');
