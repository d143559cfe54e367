-- 0001: the initial schema, the PostgreSQL port of store/sqlite's 0001.
--
-- Timestamps are TIMESTAMPTZ (microseconds, the store's precision, so they
-- round-trip exactly). Ids and references are COLLATE "C": they sort as
-- bytes, as in SQLite, whatever the database's locale, so listings ordered
-- by id agree on both adapters (and compare faster). Optional references
-- are NULL (not '') so that foreign keys check them; optional text is ''.

CREATE TABLE users (
	id         TEXT COLLATE "C" PRIMARY KEY,
	name       TEXT NOT NULL,
	email      TEXT NOT NULL DEFAULT '',
	admin      BOOLEAN NOT NULL DEFAULT false,
	created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE teams (
	id         TEXT COLLATE "C" PRIMARY KEY,
	name       TEXT NOT NULL,
	created_by TEXT COLLATE "C" NOT NULL REFERENCES users (id),
	created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE team_members (
	team_id TEXT COLLATE "C" NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (team_id, user_id)
);

-- A user's teams (UserTeams, SharesTeamOrProject); the primary key serves
-- the other direction (TeamMembers, IsTeamMember).
CREATE INDEX team_members_by_user ON team_members (user_id, team_id);

CREATE TABLE projects (
	id         TEXT COLLATE "C" PRIMARY KEY,
	name       TEXT NOT NULL,
	owner_id   TEXT COLLATE "C" NOT NULL REFERENCES users (id),
	team_id    TEXT COLLATE "C" REFERENCES teams (id) ON DELETE SET NULL,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

-- Keeps the team_id foreign key cheap to enforce when a team goes.
CREATE INDEX projects_by_team ON projects (team_id) WHERE team_id IS NOT NULL;

CREATE TABLE project_members (
	project_id TEXT COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (project_id, user_id)
);

CREATE INDEX project_members_by_user ON project_members (user_id, project_id);

CREATE TABLE tasks (
	id          TEXT COLLATE "C" PRIMARY KEY,
	title       TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	status      TEXT NOT NULL CHECK (status IN ('TODO', 'IN_PROGRESS', 'DONE')),
	project_id  TEXT COLLATE "C" REFERENCES projects (id) ON DELETE CASCADE,
	user_id     TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	assigned_to TEXT COLLATE "C" REFERENCES users (id) ON DELETE SET NULL,
	version     BIGINT NOT NULL CHECK (version >= 1),
	created_at  TIMESTAMPTZ NOT NULL,
	updated_at  TIMESTAMPTZ NOT NULL
);

-- ProjectTasks, VisibleTasks (through memberships) and the cascade.
CREATE INDEX tasks_by_project ON tasks (project_id, created_at, id) WHERE project_id IS NOT NULL;
-- VisibleTasks: owned.
CREATE INDEX tasks_by_owner ON tasks (user_id, created_at, id);
-- VisibleTasks: assigned.
CREATE INDEX tasks_by_assignee ON tasks (assigned_to, created_at, id) WHERE assigned_to IS NOT NULL;

CREATE TABLE notifications (
	id         TEXT COLLATE "C" PRIMARY KEY,
	user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	sender_id  TEXT COLLATE "C" REFERENCES users (id) ON DELETE SET NULL,
	message    TEXT NOT NULL,
	is_read    BOOLEAN NOT NULL DEFAULT false,
	created_at TIMESTAMPTZ NOT NULL
);

-- UserNotifications, newest first; the partial index serves unreadOnly.
CREATE INDEX notifications_by_user ON notifications (user_id, created_at, id);
CREATE INDEX notifications_unread_by_user ON notifications (user_id, created_at, id) WHERE NOT is_read;

CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
