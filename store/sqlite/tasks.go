package sqlite

import (
	"context"
	"database/sql"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

const taskCols = `t.id, t.title, t.description, t.status, t.project_id, t.user_id, t.assigned_to,
	t.version, t.created_at, t.updated_at`

const (
	insertTaskQuery = `INSERT INTO tasks
		(id, title, description, status, project_id, user_id, assigned_to, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	getTaskQuery    = `SELECT ` + taskCols + ` FROM tasks t WHERE t.id = ?`
	updateTaskQuery = `UPDATE tasks
		SET title = ?, description = ?, status = ?, assigned_to = ?, version = ?, updated_at = ?
		WHERE id = ?`
	deleteTaskQuery = `DELETE FROM tasks WHERE id = ?`
)

// allProjectTasksQuery is every task of a project, for DeleteProject's
// events; clients page (projectTasks*Query).
const allProjectTasksQuery = `SELECT ` + taskCols + ` FROM tasks t
	WHERE t.project_id = ? ORDER BY t.created_at, t.id`

// The pages of a project's tasks (see paging.go), on tasks_by_project.
const (
	// Parameters: project, limit.
	projectTasksQuery = `SELECT ` + taskCols + ` FROM tasks t
		WHERE t.project_id = ? ORDER BY t.created_at, t.id LIMIT ?`
	// Parameters: project, after, project, limit.
	projectTasksAfterQuery = `SELECT ` + taskCols + ` FROM tasks t
		WHERE t.project_id = ?
			AND (t.created_at, t.id) > (SELECT k.created_at, k.id FROM tasks k WHERE k.id = ? AND k.project_id = ?)
		ORDER BY t.created_at, t.id LIMIT ?`
	// Parameters: after, project.
	hasProjectTaskQuery = `SELECT EXISTS (SELECT 1 FROM tasks WHERE id = ? AND project_id = ?)`
)

// The pages of a user's visible tasks (see paging.go). A task is visible
// through three arms (owned, assigned, in one of the user's projects), each
// read in order from its index (tasks_by_owner, tasks_by_assignee,
// tasks_by_project) and cut to a page, so a page costs a few pages of index
// reads however many tasks the user sees. The outer query keeps each task
// once (IN) and cuts the merged arms to a page. The arms' ORDER BY and
// LIMIT sit in derived tables: a compound SELECT's members may not have
// them.
const (
	// Parameters: user, limit, user, limit, user, limit, limit.
	visibleTasksQuery = `SELECT ` + taskCols + ` FROM tasks t WHERE t.id IN (
		SELECT id FROM (SELECT a.id FROM tasks a
			WHERE a.user_id = ?
			ORDER BY a.created_at, a.id LIMIT ?) owned
		UNION ALL
		SELECT id FROM (SELECT b.id FROM tasks b
			WHERE b.assigned_to = ?
			ORDER BY b.created_at, b.id LIMIT ?) assigned
		UNION ALL
		SELECT id FROM (SELECT c.id FROM project_members m JOIN tasks c ON c.project_id = m.project_id
			WHERE m.user_id = ?
			ORDER BY c.created_at, c.id LIMIT ?) shared)
		ORDER BY t.created_at, t.id LIMIT ?`
	// k is the sort key of the After task, if the user sees it.
	// Parameters: after, user, user, user, then as visibleTasksQuery.
	visibleTasksAfterQuery = `WITH k AS (SELECT v.created_at, v.id FROM tasks v
			WHERE v.id = ? AND (v.user_id = ? OR v.assigned_to = ?
				OR v.project_id IN (SELECT w.project_id FROM project_members w WHERE w.user_id = ?)))
		SELECT ` + taskCols + ` FROM tasks t WHERE t.id IN (
		SELECT id FROM (SELECT a.id FROM tasks a
			WHERE a.user_id = ? AND (a.created_at, a.id) > (SELECT k.created_at, k.id FROM k)
			ORDER BY a.created_at, a.id LIMIT ?) owned
		UNION ALL
		SELECT id FROM (SELECT b.id FROM tasks b
			WHERE b.assigned_to = ? AND (b.created_at, b.id) > (SELECT k.created_at, k.id FROM k)
			ORDER BY b.created_at, b.id LIMIT ?) assigned
		UNION ALL
		SELECT id FROM (SELECT c.id FROM project_members m JOIN tasks c ON c.project_id = m.project_id
			WHERE m.user_id = ? AND (c.created_at, c.id) > (SELECT k.created_at, k.id FROM k)
			ORDER BY c.created_at, c.id LIMIT ?) shared)
		ORDER BY t.created_at, t.id LIMIT ?`
	// Parameters: after, user, user, user.
	hasVisibleTaskQuery = `SELECT EXISTS (SELECT 1 FROM tasks v
		WHERE v.id = ? AND (v.user_id = ? OR v.assigned_to = ?
			OR v.project_id IN (SELECT w.project_id FROM project_members w WHERE w.user_id = ?)))`
)

func scanTask(sc scanner) (store.Task, error) {
	var t store.Task
	var project, assigned sql.NullString
	var created, updated int64
	if err := sc.Scan(&t.ID, &t.Title, &t.Description, &t.Status, &project, &t.UserID, &assigned,
		&t.Version, &created, &updated); err != nil {
		return store.Task{}, err
	}
	t.ProjectID = project.String
	t.AssignedTo = assigned.String
	t.CreatedAt = fromMicros(created)
	t.UpdatedAt = fromMicros(updated)
	return t, nil
}

func badStatus(s store.TaskStatus) error {
	return errs.E(errs.BadUserInput, "unknown task status %q (want TODO, IN_PROGRESS or DONE)", s)
}

// CreateTask stores a task at version 1; an empty status is TODO. Its owner,
// project and assignee must exist.
func (s *Store) CreateTask(ctx context.Context, t store.Task) (store.Task, error) {
	if t.ID == "" {
		t.ID = store.NewID("tsk")
	}
	if t.Status == "" {
		t.Status = store.StatusTodo
	}
	if !t.Status.Valid() {
		return store.Task{}, badStatus(t.Status)
	}
	t.Version = 1
	t.CreatedAt, t.UpdatedAt = stampNew(t.CreatedAt, t.UpdatedAt)
	err := s.write(ctx, func(tx queryer) error {
		if err := mustExist(ctx, tx, kindUser, t.UserID); err != nil {
			return err
		}
		if t.ProjectID != "" {
			if err := mustExist(ctx, tx, kindProject, t.ProjectID); err != nil {
				return err
			}
		}
		if t.AssignedTo != "" {
			if err := mustExist(ctx, tx, kindUser, t.AssignedTo); err != nil {
				return err
			}
		}
		if err := mustBeNew(ctx, tx, kindTask, t.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, insertTaskQuery, t.ID, t.Title, t.Description, string(t.Status), nullable(t.ProjectID), t.UserID,
			nullable(t.AssignedTo), t.Version, micros(t.CreatedAt), micros(t.UpdatedAt))
		return err
	})
	if err != nil {
		return store.Task{}, wrap("create task", err)
	}
	return t, nil
}

// Task returns the task with the id.
func (s *Store) Task(ctx context.Context, id string) (store.Task, error) {
	t, err := getTask(ctx, s.rq(), id)
	return t, wrap("get task", err)
}

// LockTask is Task: inside a unit of work the single writer already keeps
// every other write out until the unit ends.
func (s *Store) LockTask(ctx context.Context, id string) (store.Task, error) {
	t, err := getTask(ctx, s.rq(), id)
	return t, wrap("lock task", err)
}

func getTask(ctx context.Context, q queryer, id string) (store.Task, error) {
	return getByID(ctx, q, kindTask, getTaskQuery, scanTask, id)
}

// UpdateTask applies the patch, adds one to Version and moves UpdatedAt
// forward, in one transaction: concurrent updates of one task each get
// their own version.
func (s *Store) UpdateTask(ctx context.Context, id string, patch store.TaskPatch) (store.Task, error) {
	if patch.Status != nil && !patch.Status.Valid() {
		return store.Task{}, badStatus(*patch.Status)
	}
	var t store.Task
	err := s.write(ctx, func(tx queryer) error {
		var err error
		if t, err = getTask(ctx, tx, id); err != nil {
			return err
		}
		if patch.AssignedTo != nil && *patch.AssignedTo != "" {
			if err := mustExist(ctx, tx, kindUser, *patch.AssignedTo); err != nil {
				return err
			}
		}
		if patch.Title != nil {
			t.Title = *patch.Title
		}
		if patch.Description != nil {
			t.Description = *patch.Description
		}
		if patch.Status != nil {
			t.Status = *patch.Status
		}
		if patch.AssignedTo != nil {
			t.AssignedTo = *patch.AssignedTo
		}
		t.Version++
		t.UpdatedAt = later(store.Now(), t.UpdatedAt)
		_, err = tx.ExecContext(ctx, updateTaskQuery, t.Title, t.Description, string(t.Status), nullable(t.AssignedTo), t.Version, micros(t.UpdatedAt), id)
		return err
	})
	if err != nil {
		return store.Task{}, wrap("update task", err)
	}
	return t, nil
}

// DeleteTask deletes the task and returns it as it was.
func (s *Store) DeleteTask(ctx context.Context, id string) (store.Task, error) {
	var t store.Task
	err := s.write(ctx, func(tx queryer) error {
		var err error
		if t, err = getTask(ctx, tx, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, deleteTaskQuery, id)
		return err
	})
	if err != nil {
		return store.Task{}, wrap("delete task", err)
	}
	return t, nil
}

// ProjectTasks lists one page of the project's tasks ordered by creation,
// then id.
func (s *Store) ProjectTasks(ctx context.Context, projectID string, p store.Page) ([]store.Task, error) {
	return listPage(ctx, s, "list project tasks", kindProject, projectID, p, scanTask,
		stmt{projectTasksQuery, []any{projectID, p.Limit}},
		stmt{projectTasksAfterQuery, []any{projectID, p.After, projectID, p.Limit}},
		stmt{hasProjectTaskQuery, []any{p.After, projectID}})
}

func projectTasks(ctx context.Context, q queryer, projectID string) ([]store.Task, error) {
	rows, err := q.QueryContext(ctx, allProjectTasksQuery, projectID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTask)
}

// VisibleTasks lists one page of the tasks the user owns, is assigned, or
// that belong to a project the user is a member of, each once, ordered by
// creation, then id.
func (s *Store) VisibleTasks(ctx context.Context, userID string, p store.Page) ([]store.Task, error) {
	u, n := userID, p.Limit
	arms := []any{u, n, u, n, u, n, n}
	return listPage(ctx, s, "list visible tasks", kindUser, userID, p, scanTask,
		stmt{visibleTasksQuery, arms},
		stmt{visibleTasksAfterQuery, append([]any{p.After, u, u, u}, arms...)},
		stmt{hasVisibleTaskQuery, []any{p.After, u, u, u}})
}
