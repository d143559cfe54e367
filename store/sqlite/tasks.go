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

const projectTasksQuery = `SELECT ` + taskCols + ` FROM tasks t
	WHERE t.project_id = ? ORDER BY t.created_at, t.id`

// visibleTasksQuery is one WHERE over the tasks table, so each task comes
// at most once; its three arms are served by the owner, assignee and
// project indexes. Parameters: the user id, three times.
const visibleTasksQuery = `SELECT ` + taskCols + ` FROM tasks t
	WHERE t.user_id = ? OR t.assigned_to = ?
		OR t.project_id IN (SELECT m.project_id FROM project_members m WHERE m.user_id = ?)
	ORDER BY t.created_at, t.id`

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

// ProjectTasks lists the project's tasks ordered by creation, then id.
func (s *Store) ProjectTasks(ctx context.Context, projectID string) ([]store.Task, error) {
	return listUnder(ctx, s, "list project tasks", kindProject, projectID, scanTask, projectTasksQuery, projectID)
}

func projectTasks(ctx context.Context, q queryer, projectID string) ([]store.Task, error) {
	rows, err := q.QueryContext(ctx, projectTasksQuery, projectID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTask)
}

// VisibleTasks lists, each once, the tasks the user owns, is assigned, or
// that belong to a project the user is a member of, ordered by creation,
// then id.
func (s *Store) VisibleTasks(ctx context.Context, userID string) ([]store.Task, error) {
	return listUnder(ctx, s, "list visible tasks", kindUser, userID, scanTask, visibleTasksQuery, userID, userID, userID)
}
