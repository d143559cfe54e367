-- 0003: live rights. A disabled user is refused everywhere; the revocation
-- instants (microseconds, NULL = never) let a token outlive neither a
-- disabling nor a demotion: a token issued at or before
-- sessions_revoked_at is refused, and the admin role claim of a token
-- issued at or before admin_revoked_at is ignored.

ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));
ALTER TABLE users ADD COLUMN sessions_revoked_at INTEGER;
ALTER TABLE users ADD COLUMN admin_revoked_at INTEGER;
