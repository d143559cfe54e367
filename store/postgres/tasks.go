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
	// lockTaskQuery reads a task and keeps it from changing until the unit
	// of work ends. FOR NO KEY UPDATE is the lock UpdateTask's UPDATE takes
	// (so a LockTask then UpdateTask holds one lock throughout) and leaves
	// foreign-key checks of rows that reference the task free.
	lockTaskQuery = getTaskQuery + ` FOR NO KEY UPDATE OF t`
	// pinTaskProjectQuery pins the project of a task (none for a personal
	// task) before LockTask locks the task: the package doc's lock order.
	// A task never changes project, so the pin stays its project's.
	pinTaskProjectQuery = `SELECT true FROM tasks t JOIN projects p ON p.id = t.project_id
		WHERE t.id = $1 FOR KEY SHARE OF p`
	deleteTaskQuery = `DELETE FROM tasks t WHERE t.id = $1 RETURNING ` + taskCols
	// deleteProjectTasksQuery deletes a project's tasks and returns them as
	// deleted (a concurrent update finishes first), in listing order.
	deleteProjectTasksQuery = `WITH t AS (DELETE FROM tasks WHERE project_id = $1 RETURNING *)
		SELECT ` + taskCols + ` FROM t ORDER BY t.created_at, t.id`
)

// The pages of a project's tasks (see paging.go), on tasks_by_project.
const (
	// Parameters: project, limit.
	projectTasksQuery = `SELECT ` + taskCols + ` FROM tasks t
		WHERE t.project_id = $1 ORDER BY t.created_at, t.id LIMIT $2`
	// Parameters: project, limit, after.
	projectTasksAfterQuery = `SELECT ` + taskCols + ` FROM tasks t
		WHERE t.project_id = $1
			AND (t.created_at, t.id) > (SELECT k.created_at, k.id FROM tasks k WHERE k.id = $3 AND k.project_id = $1)
		ORDER BY t.created_at, t.id LIMIT $2`
	// Parameters: after, project.
	hasProjectTaskQuery = `SELECT EXISTS (SELECT 1 FROM tasks WHERE id = $1 AND project_id = $2)`
)

// The pages of a user's visible tasks (see paging.go). A task is visible
// through three arms (owned, assigned, in one of the user's projects), each
// read in order from its index (tasks_by_owner, tasks_by_assignee,
// tasks_by_project, which hold the sort key, so the arms read no table
// rows) and cut to a page, so a page costs a few pages of index reads
// however many tasks the user owns or is assigned. The outer query keeps
// each task once (IN) and cuts the merged arms to a page.
const (
	ownedArm    = `SELECT a.id FROM tasks a WHERE a.user_id = $1`
	assignedArm = `SELECT b.id FROM tasks b WHERE b.assigned_to = $1`
	sharedArm   = `SELECT c.id FROM project_members m JOIN tasks c ON c.project_id = m.project_id
		WHERE m.user_id = $1`
	// afterKey keeps the rows after k, the After task's sort key.
	afterKey = ` > (SELECT k.created_at, k.id FROM k)`

	// Parameters: user, limit.
	visibleTasksQuery = `SELECT ` + taskCols + ` FROM tasks t WHERE t.id IN (
		(` + ownedArm + ` ORDER BY a.created_at, a.id LIMIT $2)
		UNION ALL (` + assignedArm + ` ORDER BY b.created_at, b.id LIMIT $2)
		UNION ALL (` + sharedArm + ` ORDER BY c.created_at, c.id LIMIT $2))
		ORDER BY t.created_at, t.id LIMIT $2`
	// k is the sort key of the After task, if the user sees it.
	// Parameters: user, limit, after.
	visibleTasksAfterQuery = `WITH k AS (SELECT v.created_at, v.id FROM tasks v WHERE v.id = $3 AND ` + visibleFilter + `)
		SELECT ` + taskCols + ` FROM tasks t WHERE t.id IN (
		(` + ownedArm + ` AND (a.created_at, a.id)` + afterKey + ` ORDER BY a.created_at, a.id LIMIT $2)
		UNION ALL (` + assignedArm + ` AND (b.created_at, b.id)` + afterKey + ` ORDER BY b.created_at, b.id LIMIT $2)
		UNION ALL (` + sharedArm + ` AND (c.created_at, c.id)` + afterKey + ` ORDER BY c.created_at, c.id LIMIT $2))
		ORDER BY t.created_at, t.id LIMIT $2`
	// visibleFilter: v is a task the user ($1) sees.
	visibleFilter = `(v.user_id = $1 OR v.assigned_to = $1
		OR v.project_id IN (SELECT w.project_id FROM project_members w WHERE w.user_id = $1))`
	// Parameters: user, after.
	hasVisibleTaskQuery = `SELECT EXISTS (SELECT 1 FROM tasks v WHERE v.id = $2 AND ` + visibleFilter + `)`
)

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

// LockTask returns the task; inside a unit of work it holds the task's row
// lock until the unit ends (see the package doc for the lock order).
func (d db) LockTask(ctx context.Context, id string) (store.Task, error) {
	if !d.unit {
		return d.Task(ctx, id)
	}
	if _, err := lockedExists(ctx, d.q, pinTaskProjectQuery, id); err != nil {
		return store.Task{}, wrap("lock task", err)
	}
	t, err := getByID(ctx, d.q, kindTask, lockTaskQuery, scanTask, id)
	return t, wrap("lock task", err)
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

// ProjectTasks lists one page of the project's tasks ordered by creation,
// then id.
func (d db) ProjectTasks(ctx context.Context, projectID string, p store.Page) ([]store.Task, error) {
	return listPage(ctx, d, "list project tasks", kindProject, projectID, p, scanTask,
		stmt{projectTasksQuery, []any{projectID, p.Limit}},
		stmt{projectTasksAfterQuery, []any{projectID, p.Limit, p.After}},
		stmt{hasProjectTaskQuery, []any{p.After, projectID}})
}

// VisibleTasks lists one page of the tasks the user owns, is assigned, or
// that belong to a project the user is a member of, each once, ordered by
// creation, then id.
func (d db) VisibleTasks(ctx context.Context, userID string, p store.Page) ([]store.Task, error) {
	return listPage(ctx, d, "list visible tasks", kindUser, userID, p, scanTask,
		stmt{visibleTasksQuery, []any{userID, p.Limit}},
		stmt{visibleTasksAfterQuery, []any{userID, p.Limit, p.After}},
		stmt{hasVisibleTaskQuery, []any{userID, p.After}})
}
