package postgres

import (
	"strings"
	"testing"
)

// seed fills the tables with a few thousand rows spread over many users,
// teams and projects, and refreshes the planner's statistics: the plans
// checked are those of a database in use, not of empty tables.
const seed = `
INSERT INTO users (id, name, created_at) SELECT 'u' || i, 'U', now() FROM generate_series(1, 20000) i;
INSERT INTO teams SELECT 't' || i, 'T', 'u' || i, now() FROM generate_series(1, 5000) i;
INSERT INTO team_members SELECT 't' || (i % 5000 + 1), 'u' || i FROM generate_series(1, 20000) i;
INSERT INTO invitations SELECT 't' || (i % 5000 + 1), 'u' || (i % 20000 + 1), 'u' || (i % 5000 + 1), now()
	FROM generate_series(1, 20000) i ON CONFLICT DO NOTHING;
INSERT INTO projects SELECT 'p' || i, 'P', 'u' || i, NULL, now(), now() FROM generate_series(1, 5000) i;
INSERT INTO project_members SELECT 'p' || (i % 5000 + 1), 'u' || i FROM generate_series(1, 20000) i;
INSERT INTO tasks SELECT 'k' || i, 'T', '', 'TODO', CASE WHEN i % 4 <> 0 THEN 'p' || (i % 5000 + 1) END,
	'u' || (i % 20000 + 1), CASE WHEN i % 3 = 0 THEN 'u' || (i % 19999 + 1) END, 1,
	now() - i * interval '1 second', now()
	FROM generate_series(1, 40000) i;
INSERT INTO notifications SELECT 'n' || i, 'u' || (i % 20000 + 1), NULL, 'm', i % 10 <> 0,
	now() - i * interval '1 second' FROM generate_series(1, 40000) i;
ANALYZE;
`

// Every listing and membership query reaches its rows through an index on
// a database in use: the plan names the indexes and scans no table whole.
func TestQueriesUseIndexes(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	if _, err := s.pool.Exec(t.Context(), seed); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		query   string
		args    []any
		indexes []string
	}{
		{"TeamMembers", teamMembersQuery, []any{"t7"}, []string{"team_members_pkey"}},
		{"ProjectMembers", projectMembersQuery, []any{"p7"}, []string{"project_members_pkey"}},
		{"AllUserProjects", allUserProjectsQuery, []any{"u7"}, []string{"project_members_by_user"}},
		{"UserInvitations", userInvitationsQuery, []any{"u7"}, []string{"invitations_by_user"}},
		{"SharesTeamOrProject", sharesQuery, []any{"u7", "u8"}, []string{"team_members_by_user", "project_members_by_user"}},
		{"DeleteProject's tasks", deleteProjectTasksQuery, []any{"p7"}, []string{"tasks_by_project"}},
		// Pages: each reads its index from the After key on.
		{"UserTeams", userTeamsQuery, []any{"u7", 50}, []string{"team_members_by_user"}},
		{"UserTeams after", userTeamsAfterQuery, []any{"u7", 50, "t3"}, []string{"team_members_by_user"}},
		{"UserProjects", userProjectsQuery, []any{"u7", 50}, []string{"project_members_by_user"}},
		{"UserProjects after", userProjectsAfterQuery, []any{"u7", 50, "p3"}, []string{"project_members_by_user"}},
		{"ProjectTasks", projectTasksQuery, []any{"p7", 50}, []string{"tasks_by_project"}},
		{"ProjectTasks after", projectTasksAfterQuery, []any{"p7", 50, "k7"}, []string{"tasks_by_project"}},
		{"VisibleTasks", visibleTasksQuery, []any{"u7", 50},
			[]string{"tasks_by_owner", "tasks_by_assignee", "tasks_by_project", "project_members_by_user"}},
		{"VisibleTasks after", visibleTasksAfterQuery, []any{"u7", 50, "k7"},
			[]string{"tasks_by_owner", "tasks_by_assignee", "tasks_by_project", "project_members_by_user"}},
		{"has visible task", hasVisibleTaskQuery, []any{"u7", "k7"}, []string{"tasks_pkey"}},
		{"UserNotifications", notificationsQuery, []any{"u7", 50}, []string{"notifications_by_user"}},
		{"UserNotifications after", notificationsAfterQuery, []any{"u7", 50, "n7"}, []string{"notifications_by_user"}},
		{"UserNotifications unread", unreadNotificationsQuery, []any{"u7", 50}, []string{"notifications_unread_by_user"}},
		{"UserNotifications unread after", unreadNotificationsAfterQuery, []any{"u7", 50, "n7"},
			[]string{"notifications_unread_by_user"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := s.pool.Query(t.Context(), "EXPLAIN "+tc.query, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var line string
				if err := rows.Scan(&line); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, line)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			text := strings.Join(plan, "\n")
			if strings.Contains(text, "Seq Scan") {
				t.Errorf("a table is scanned whole:\n%s", text)
			}
			for _, idx := range tc.indexes {
				if !strings.Contains(text, idx) {
					t.Errorf("plan does not use %s:\n%s", idx, text)
				}
			}
		})
	}
}
