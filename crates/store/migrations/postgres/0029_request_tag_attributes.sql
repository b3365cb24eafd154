-- See the SQLite migration of the same name.
ALTER TABLE organizations ADD COLUMN request_tag_attributes text NOT NULL DEFAULT '[]';
