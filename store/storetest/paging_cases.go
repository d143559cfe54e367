package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/taskpulse/taskpulse/store"
)

// The paged listings and their fixtures. The caller is "pat"; "olga" owns
// what pat must not see. Item n's sort key is at(n/20), so items 0 and 10,
// 20 and 30, … tie on creation time and their ids decide.

// itemID returns the id of item n: prefix, "_", the number zero-padded
// (ids then sort as numbers do).
func itemID(prefix string) func(n int) string {
	return func(n int) string { return fmt.Sprintf("%s_%08d", prefix, n) }
}

func pagedCases() []pagedCase {
	return []pagedCase{
		{"ProjectTasks", pagedProjectTasks},
		{"VisibleTasks", pagedVisibleTasks},
		{"UserProjects", pagedUserProjects},
		{"UserTeams", pagedUserTeams},
		{"UserNotifications", pagedNotifications},
		{"UserNotificationsUnread", pagedUnreadNotifications},
	}
}

func pagedProjectTasks(t *testing.T, s store.Store) paged {
	mkUsers(t, s, "pat", "olga")
	p := mkProject(t, s, "prj_p", "pat", "olga")
	mkProject(t, s, "prj_q", "pat")
	other := mkTask(t, s, store.Task{ID: "tsk_elsewhere", ProjectID: "prj_q", UserID: "pat", CreatedAt: at(3)})
	mkTask(t, s, store.Task{ID: "tsk_personal", UserID: "pat", CreatedAt: at(4)})
	id := itemID("tsk")
	return paged{
		list: func(ctx context.Context, pg store.Page) ([]string, error) {
			ts, err := s.ProjectTasks(ctx, p.ID, pg)
			return taskIDs(ts), err
		},
		id: id,
		add: func(t *testing.T, n int) {
			owner := []string{"pat", "olga"}[n/10%2]
			mkTask(t, s, store.Task{ID: id(n), ProjectID: p.ID, UserID: owner, CreatedAt: at(n / 20)})
		},
		drop: func(t *testing.T, n int) {
			_, err := s.DeleteTask(t.Context(), id(n))
			noErr(t, err, "DeleteTask")
		},
		foreign: other.ID,
		orphan: func(ctx context.Context, pg store.Page) error {
			_, err := s.ProjectTasks(ctx, "prj_missing", pg)
			return err
		},
		missing: "prj_missing",
	}
}

func pagedVisibleTasks(t *testing.T, s store.Store) paged {
	mkUsers(t, s, "pat", "olga")
	shared := mkProject(t, s, "prj_shared", "olga", "pat")
	mkProject(t, s, "prj_olga", "olga")
	// Tasks pat does not see, spread over the fixture's times.
	for i := range 10 {
		project := []string{"", "prj_olga"}[i%2]
		mkTask(t, s, store.Task{ID: fmt.Sprint("tsk_hidden", i), ProjectID: project, UserID: "olga", CreatedAt: at(i * 10)})
	}
	id := itemID("tsk")
	// Item n comes through one arm, or all three.
	arm := func(n int) int { return n / 10 % 4 }
	return paged{
		list: func(ctx context.Context, pg store.Page) ([]string, error) {
			ts, err := s.VisibleTasks(ctx, "pat", pg)
			return taskIDs(ts), err
		},
		id: id,
		add: func(t *testing.T, n int) {
			tk := store.Task{ID: id(n), CreatedAt: at(n / 20)}
			switch arm(n) {
			case 0: // owned
				tk.UserID = "pat"
			case 1: // assigned
				tk.UserID, tk.AssignedTo = "olga", "pat"
			case 2: // through the project
				tk.UserID, tk.ProjectID = "olga", shared.ID
			default: // all three
				tk.UserID, tk.ProjectID, tk.AssignedTo = "pat", shared.ID, "pat"
			}
			mkTask(t, s, tk)
		},
		// An assigned task leaves when unassigned; the others are deleted.
		drop: func(t *testing.T, n int) {
			var err error
			if arm(n) == 1 {
				_, err = s.UpdateTask(t.Context(), id(n), store.TaskPatch{AssignedTo: ptr("")})
			} else {
				_, err = s.DeleteTask(t.Context(), id(n))
			}
			noErr(t, err, "drop a visible task")
		},
		foreign: "tsk_hidden1",
		orphan: func(ctx context.Context, pg store.Page) error {
			_, err := s.VisibleTasks(ctx, "nobody", pg)
			return err
		},
		missing: "nobody",
	}
}

func pagedUserProjects(t *testing.T, s store.Store) paged {
	mkUsers(t, s, "pat", "olga")
	other := mkProject(t, s, "prj_olga", "olga")
	id := itemID("prj")
	owned := func(n int) bool { return n/10%2 == 0 }
	return paged{
		list: func(ctx context.Context, pg store.Page) ([]string, error) {
			ps, err := s.UserProjects(ctx, "pat", pg)
			return projectIDs(ps), err
		},
		unpaged: func(ctx context.Context) ([]string, error) {
			ps, err := s.AllUserProjects(ctx, "pat")
			return projectIDs(ps), err
		},
		id: id,
		add: func(t *testing.T, n int) {
			if owned(n) {
				mkProject(t, s, id(n), "pat")
			} else {
				mkProject(t, s, id(n), "olga", "pat")
			}
		},
		drop: func(t *testing.T, n int) {
			var err error
			if owned(n) {
				_, _, err = s.DeleteProject(t.Context(), id(n))
			} else {
				_, err = s.RemoveProjectMember(t.Context(), id(n), "pat")
			}
			noErr(t, err, "drop a project")
		},
		foreign: other.ID,
		orphan: func(ctx context.Context, pg store.Page) error {
			_, err := s.UserProjects(ctx, "nobody", pg)
			return err
		},
		missing: "nobody",
	}
}

func pagedUserTeams(t *testing.T, s store.Store) paged {
	mkUsers(t, s, "pat", "olga")
	other := mkTeam(t, s, "team_olga", "olga")
	id := itemID("team")
	return paged{
		list: func(ctx context.Context, pg store.Page) ([]string, error) {
			ts, err := s.UserTeams(ctx, "pat", pg)
			return teamIDs(ts), err
		},
		id: id,
		add: func(t *testing.T, n int) {
			if n/10%2 == 0 {
				mkTeam(t, s, id(n), "pat")
			} else {
				mkTeam(t, s, id(n), "olga", "pat")
			}
		},
		// Pat leaves: as the last member of their own teams, or as a
		// member of olga's.
		drop: func(t *testing.T, n int) {
			_, err := s.RemoveTeamMember(t.Context(), id(n), "pat")
			noErr(t, err, "RemoveTeamMember")
		},
		foreign: other.ID,
		orphan: func(ctx context.Context, pg store.Page) error {
			_, err := s.UserTeams(ctx, "nobody", pg)
			return err
		},
		missing: "nobody",
	}
}

func pagedNotifications(t *testing.T, s store.Store) paged {
	mkUsers(t, s, "pat", "olga")
	other, err := s.CreateNotification(t.Context(), store.Notification{ID: "ntf_olga", UserID: "olga", SenderID: "pat", Message: "hi"})
	noErr(t, err, "CreateNotification")
	id := itemID("ntf")
	return paged{
		list: func(ctx context.Context, pg store.Page) ([]string, error) {
			ns, err := s.UserNotifications(ctx, "pat", false, pg)
			return notificationIDs(ns), err
		},
		id: id,
		add: func(t *testing.T, n int) {
			_, err := s.CreateNotification(t.Context(), store.Notification{ID: id(n), UserID: "pat",
				SenderID: []string{"", "olga"}[n/10%2], Message: fmt.Sprint("m", n), Read: n/10%3 == 0, CreatedAt: at(n / 20)})
			noErr(t, err, "CreateNotification")
		},
		desc:    true,
		foreign: other.ID,
		orphan: func(ctx context.Context, pg store.Page) error {
			_, err := s.UserNotifications(ctx, "nobody", false, pg)
			return err
		},
		missing: "nobody",
	}
}

func pagedUnreadNotifications(t *testing.T, s store.Store) paged {
	mkUsers(t, s, "pat", "olga")
	other, err := s.CreateNotification(t.Context(), store.Notification{ID: "ntf_olga", UserID: "olga", Message: "hi"})
	noErr(t, err, "CreateNotification")
	// Read ones, which the unread listing skips, spread over its times.
	for i := range 10 {
		_, err := s.CreateNotification(t.Context(), store.Notification{ID: fmt.Sprint("ntf_read", i), UserID: "pat",
			Message: "old", Read: true, CreatedAt: at(i * 10)})
		noErr(t, err, "CreateNotification")
	}
	id := itemID("ntf")
	return paged{
		list: func(ctx context.Context, pg store.Page) ([]string, error) {
			ns, err := s.UserNotifications(ctx, "pat", true, pg)
			return notificationIDs(ns), err
		},
		id: id,
		add: func(t *testing.T, n int) {
			_, err := s.CreateNotification(t.Context(), store.Notification{ID: id(n), UserID: "pat",
				Message: fmt.Sprint("m", n), CreatedAt: at(n / 20)})
			noErr(t, err, "CreateNotification")
		},
		// Read, it leaves the unread listing, and it still marks a place in
		// it: a client marks a page read, then asks for the next.
		drop: func(t *testing.T, n int) {
			_, err := s.MarkNotificationRead(t.Context(), id(n))
			noErr(t, err, "MarkNotificationRead")
		},
		keepsDropped: true,
		desc:         true,
		foreign:      other.ID,
		orphan: func(ctx context.Context, pg store.Page) error {
			_, err := s.UserNotifications(ctx, "nobody", true, pg)
			return err
		},
		missing: "nobody",
	}
}

func notificationIDs(ns []store.Notification) []string {
	return ids(ns, func(n store.Notification) string { return n.ID })
}
