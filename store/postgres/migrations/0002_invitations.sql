-- 0002: team invitations (store/sqlite's 0002). A team's creator invites;
-- the invitee becomes a member only by accepting (consent before sharing).
-- One pending invitation per team and user; accepting, declining, leaving or
-- deleting either side removes it.

CREATE TABLE invitations (
	team_id    TEXT COLLATE "C" NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	invited_by TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (team_id, user_id)
);

-- UserInvitations, oldest first; the primary key serves the team's side.
CREATE INDEX invitations_by_user ON invitations (user_id, created_at, team_id);
-- Keeps the invited_by foreign key cheap to enforce when a user goes.
CREATE INDEX invitations_by_inviter ON invitations (invited_by);
