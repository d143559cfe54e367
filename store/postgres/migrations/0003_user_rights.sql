-- 0003: live rights (store/sqlite's 0003). A disabled user is refused
-- everywhere; the revocation instants (NULL = never) let a token outlive
-- neither a disabling nor a demotion: a token issued at or before
-- sessions_revoked_at is refused, and the admin role claim of a token
-- issued at or before admin_revoked_at is ignored.

ALTER TABLE users
	ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT false,
	ADD COLUMN sessions_revoked_at TIMESTAMPTZ,
	ADD COLUMN admin_revoked_at TIMESTAMPTZ;
