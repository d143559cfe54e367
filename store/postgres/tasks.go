package postgres

import (
	"context"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

const taskCols = `t.id, t.title, t.description, t.status, COALESCE(t.project_id, ''), t.user_id,
	COALESCE(t.assigned_to, ''), t.version, t.created_at, t.updated_at`

const (
	insertTaskQuery = `INSERT INTO tasks
		(id, title, description, status, project_id, user_id, assigned_to, version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (id) DO NOTHING`
	getTaskQuery = `SELECT ` + taskCols + ` FROM tasks t WHERE t.id = $1`
	// updateTaskQuery applies a patch (NULL: unchanged; an assignee of ''
	// unassigns) and bumps the version in one statement: the row lock
	// orders concurrent updates of a task and each starts from the row the
	// previous one committed. An assignee that does not exist matches no
	// row. Parameters: id, title, description, status, assignee, now.
	updateTaskQuery = `UPDATE tasks t SET
			title = COALESCE($2, t.title),
			description = COALESCE($3, t.description),
			status = COALESCE($4, t.status),
			assigned_to = CASE WHEN $5::text IS NULL THEN t.assigned_to ELSE NULLIF($5, '') END,
			version = t.version + 1,
			updated_at = GREATEST($6, t.updated_at)
		WHERE t.id = $1
			AND (COALESCE($5, '') = '' OR EXISTS (SELECT 1 FROM users WHERE id = $5))
		RETURNING ` + taskCols
	deleteTaskQuery = `DELETE FROM tasks t WHERE t.id = $1 RETURNING ` + taskCols
	// deleteProjectTasksQuery deletes a project's tasks and returns them as
	// deleted (a concurrent update finishes first), in listing order.
	deleteProjectTasksQuery = `WITH t AS (DELETE FROM tasks WHERE project_id = $1 RETURNING *)
		SELECT ` + taskCols + ` FROM t ORDER BY t.created_at, t.id`
)

const projectTasksQuery = `SELECT ` + taskCols + ` FROM tasks t
	WHERE t.project_id = $1 ORDER BY t.created_at, t.id`

// visibleTasksQuery unions the three ways a task is visible, each served by
// its index (owner, assignee, the user's memberships then the project's
// tasks); UNION drops the duplicates, rows of one task being equal on one
// snapshot.
const visibleTasksQuery = `SELECT ` + taskCols + ` FROM tasks t WHERE t.user_id = $1
	UNION SELECT ` + taskCols + ` FROM tasks t WHERE t.assigned_to = $1
	UNION SELECT ` + taskCols + ` FROM project_members m JOIN tasks t ON t.project_id = m.project_id
		WHERE m.user_id = $1
	ORDER BY 9, 1`

func scanTask(sc scanner) (store.Task, error) {
	var t store.Task
	var status string
	if err := sc.Scan(&t.ID, &t.Title, &t.Description, &status, &t.ProjectID, &t.UserID, &t.AssignedTo,
		&t.Version, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return store.Task{}, err
	}
	t.Status = store.TaskStatus(status)
	t.CreatedAt, t.UpdatedAt = utc(t.CreatedAt), utc(t.UpdatedAt)
	return t, nil
}

func badStatus(s store.TaskStatus) error {
	return errs.E(errs.BadUserInput, "unknown task status %q (want TODO, IN_PROGRESS or DONE)", s)
}

// CreateTask stores a task at version 1; an empty status is TODO. Its owner,
// project and assignee must exist; the project stays until the task is in.
func (d db) CreateTask(ctx context.Context, t store.Task) (store.Task, error) {
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
	err := d.write(ctx, func(q querier) error {
		if err := pin(ctx, q, kindUser, t.UserID); err != nil {
			return err
		}
		if t.ProjectID != "" {
			if err := pin(ctx, q, kindProject, t.ProjectID); err != nil {
				return err
			}
		}
		if t.AssignedTo != "" {
			if err := pin(ctx, q, kindUser, t.AssignedTo); err != nil {
				return err
			}
		}
		created, err := changedOne(ctx, q, insertTaskQuery, t.ID, t.Title, t.Description, string(t.Status),
			nullable(t.ProjectID), t.UserID, nullable(t.AssignedTo), t.Version, t.CreatedAt, t.UpdatedAt)
		if err != nil {
			return err
		}
		if !created {
			return alreadyExists(kindTask, t.ID)
		}
		return nil
	})
	if err != nil {
		return store.Task{}, wrap("create task", err)
	}
	return t, nil
}

// Task returns the task with the id.
func (d db) Task(ctx context.Context, id string) (store.Task, error) {
	t, err := getByID(ctx, d.q, kindTask, getTaskQuery, scanTask, id)
	return t, wrap("get task", err)
}

// UpdateTask applies the patch, adds one to Version and moves UpdatedAt
// forward, in one statement: concurrent updates of one task each get their
// own version.
func (d db) UpdateTask(ctx context.Context, id string, patch store.TaskPatch) (store.Task, error) {
	var status *string
	if patch.Status != nil {
		if !patch.Status.Valid() {
			return store.Task{}, badStatus(*patch.Status)
		}
		s := string(*patch.Status)
		status = &s
	}
	t, err := getByID(ctx, d.q, kindTask, updateTaskQuery, scanTask, id,
		patch.Title, patch.Description, status, patch.AssignedTo, store.Now())
	if errs.Is(err, errs.NotFound) && patch.AssignedTo != nil && *patch.AssignedTo != "" {
		// No row matched: the task or the assignee is missing. Say which,
		// the task first (as a check before the update would).
		if ok, xerr := queryBool(ctx, d.q, kindTask.existsQuery(), id); xerr != nil {
			err = xerr
		} else if ok {
			err = notFound(kindUser, *patch.AssignedTo)
		}
	}
	return t, wrap("update task", err)
}

// DeleteTask deletes the task and returns it as it was.
func (d db) DeleteTask(ctx context.Context, id string) (store.Task, error) {
	t, err := getByID(ctx, d.q, kindTask, deleteTaskQuery, scanTask, id)
	return t, wrap("delete task", err)
}

// ProjectTasks lists the project's tasks ordered by creation, then id.
func (d db) ProjectTasks(ctx context.Context, projectID string) ([]store.Task, error) {
	return listUnder(ctx, d, "list project tasks", kindProject, projectID, scanTask, projectTasksQuery, projectID)
}

// VisibleTasks lists, each once, the tasks the user owns, is assigned, or
// that belong to a project the user is a member of, ordered by creation,
// then id.
func (d db) VisibleTasks(ctx context.Context, userID string) ([]store.Task, error) {
	return listUnder(ctx, d, "list visible tasks", kindUser, userID, scanTask, visibleTasksQuery, userID)
}
