-- The span attributes an organization promotes to tags of its requests (a JSON array of names);
-- set with PATCH /api/v1/org.
ALTER TABLE organizations ADD COLUMN request_tag_attributes TEXT NOT NULL DEFAULT '[]';
