package service

import (
	"context"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// TaskInput is a new task.
type TaskInput struct {
	Title       string
	Description string
	ProjectID   string // "" = personal task
	AssignedTo  string // "" = unassigned
}

// TaskChange is a task update; nil fields stay as they are.
type TaskChange struct {
	Title       *string
	Description *string
	Status      *store.TaskStatus
}

// taskEvent addresses a task event to its owner, its assignee (and the
// previous one, who must learn the task left them) and its project; the
// hub gives a user reached through several of these rooms one copy.
func taskEvent(typ string, t *store.Task, p *store.Project, prevAssignee string) *realtime.Event {
	return newEvent(typ, t.UpdatedAt, EventData{Task: t, Project: p}, nil,
		userRoom(t.UserID), userRoom(t.AssignedTo), userRoom(prevAssignee), projectRoom(t.ProjectID))
}

// Task returns a task the caller may see: its owner, its assignee, a member
// of its project, or an admin.
func (s *Service) Task(ctx context.Context, taskID string) (store.Task, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Task{}, err
	}
	t, _, err := readableTask(ctx, s.store, v, taskID)
	return t, err
}

// readableTask loads a task, its project (when it has one) and checks the
// viewer may see it: its owner, its assignee, a member of its project, or
// an admin.
func readableTask(ctx context.Context, q store.Queries, v auth.Viewer, taskID string) (store.Task, *store.Project, error) {
	if err := id("id", taskID); err != nil {
		return store.Task{}, nil, err
	}
	t, err := q.Task(ctx, taskID)
	if err != nil {
		return store.Task{}, nil, err
	}
	p, err := taskProject(ctx, q, t)
	if err != nil {
		return store.Task{}, nil, err
	}
	if v.Admin || t.UserID == v.UserID || t.AssignedTo == v.UserID {
		return t, p, nil
	}
	if p != nil {
		ok, err := q.IsProjectMember(ctx, p.ID, v.UserID)
		if err != nil {
			return store.Task{}, nil, err
		}
		if ok {
			return t, p, nil
		}
	}
	return store.Task{}, nil, errs.E(errs.Forbidden, "you may not see task %q", taskID)
}

// taskProject is t's project, nil for a personal task.
func taskProject(ctx context.Context, q store.Queries, t store.Task) (*store.Project, error) {
	if t.ProjectID == "" {
		return nil, nil
	}
	p, err := q.Project(ctx, t.ProjectID)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// changeableTask checks, in the unit of work tx, that the viewer may change
// a task, and returns it locked: a project's members change its tasks; a
// personal task is changed by its owner or assignee; deleting a personal
// task is its owner's. The lock holds the task as returned until tx ends,
// so a change that depends on its current state (the previous assignee)
// decides on the state it changes, and concurrent changes of one task take
// turns.
//
// The reads follow the store's lock order (store/postgres: decide first,
// then lock the task, then change): the viewer's membership of the task's
// project and the rules on the task as first read; then decide, the
// caller's checks of what never changes in a task (its owner and project);
// then the task's lock, and the rules again on the task as locked.
func changeableTask(ctx context.Context, tx store.Tx, v auth.Viewer, taskID string, deleting bool,
	decide func(first store.Task) error) (store.Task, *store.Project, error) {
	if err := id("id", taskID); err != nil {
		return store.Task{}, nil, err
	}
	first, err := tx.Task(ctx, taskID) // a task never changes project or owner
	if err != nil {
		return store.Task{}, nil, err
	}
	member := false
	if first.ProjectID != "" && !v.Admin {
		if member, err = tx.IsProjectMember(ctx, first.ProjectID, v.UserID); err != nil {
			return store.Task{}, nil, err
		}
	}
	if err := mayChange(v, first, member, deleting); err != nil {
		return store.Task{}, nil, err
	}
	if decide != nil {
		if err := decide(first); err != nil {
			return store.Task{}, nil, err
		}
	}
	t, err := tx.LockTask(ctx, taskID)
	if err != nil {
		return store.Task{}, nil, err
	}
	// Again on the task as locked: an assignee's rights hang on its state.
	if err := mayChange(v, t, member, deleting); err != nil {
		return store.Task{}, nil, err
	}
	p, err := taskProject(ctx, tx, t)
	if err != nil {
		return store.Task{}, nil, err
	}
	return t, p, nil
}

// mayChange applies changeableTask's rules to t; member is whether the
// viewer is a member of t's project.
func mayChange(v auth.Viewer, t store.Task, member, deleting bool) error {
	inProject := t.ProjectID != ""
	owner, assignee := t.UserID == v.UserID, t.AssignedTo == v.UserID
	switch {
	case v.Admin, inProject && member, !inProject && (owner || assignee && !deleting):
		return nil
	case inProject && (owner || assignee):
		return errs.E(errs.Forbidden, "only members of project %q change its tasks", t.ProjectID)
	case !inProject && assignee:
		return errs.E(errs.Forbidden, "only the task's owner may delete it")
	}
	return errs.E(errs.Forbidden, "you may not see task %q", t.ID)
}

// checkAssignee enforces who a task may be assigned to: a member of its
// project, or, outside any project, a user who shares a team or project
// with the task's owner (or the owner). The assignee must also be a user
// the caller may see: anyone else is NOT_FOUND, exactly as an id that does
// not exist; FORBIDDEN is only for users the caller sees anyway.
func checkAssignee(ctx context.Context, q store.Queries, v auth.Viewer, ownerID, projectID, assignee string) error {
	if err := id("assignee", assignee); err != nil {
		return err
	}
	if _, err := visibleUser(ctx, q, v, assignee, v.Admin); err != nil {
		return err
	}
	var ok bool
	var err error
	if projectID != "" {
		ok, err = q.IsProjectMember(ctx, projectID, assignee)
	} else {
		ok, err = q.SharesTeamOrProject(ctx, ownerID, assignee)
	}
	if err != nil {
		return err
	}
	if !ok {
		if projectID != "" {
			return errs.E(errs.Forbidden, "user %q is not a member of project %q", assignee, projectID)
		}
		return errs.E(errs.Forbidden, "user %q shares no team or project with the task's owner", assignee)
	}
	return nil
}

// Tasks lists one page of a project's tasks (members only) or, without a
// project, of the tasks the caller owns, is assigned, or sees through their
// projects; by creation, then id.
func (s *Service) Tasks(ctx context.Context, projectID *string, args PageArgs) ([]store.Task, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	page, err := args.page("first")
	if err != nil {
		return nil, err
	}
	if projectID == nil {
		return s.store.VisibleTasks(ctx, v.UserID, page)
	}
	if _, err := memberProject(ctx, s.store, v, *projectID); err != nil {
		return nil, err
	}
	return s.store.ProjectTasks(ctx, *projectID, page)
}

// CreateTask creates a task owned by the caller.
func (s *Service) CreateTask(ctx context.Context, in TaskInput) (store.Task, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Task{}, err
	}
	title, err := text("title", in.Title, true, MaxTitleLen)
	if err != nil {
		return store.Task{}, err
	}
	desc, err := text("description", in.Description, false, MaxDescriptionLen)
	if err != nil {
		return store.Task{}, err
	}
	var t store.Task
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		var p *store.Project
		if in.ProjectID != "" {
			pr, err := memberProject(ctx, tx, v, in.ProjectID)
			if err != nil {
				return nil, err
			}
			p = &pr
		}
		if in.AssignedTo != "" {
			if err := checkAssignee(ctx, tx, v, v.UserID, in.ProjectID, in.AssignedTo); err != nil {
				return nil, err
			}
		}
		var err error
		t, err = tx.CreateTask(ctx, store.Task{
			Title: title, Description: desc, Status: store.StatusTodo,
			ProjectID: in.ProjectID, UserID: v.UserID, AssignedTo: in.AssignedTo,
		})
		if err != nil {
			return nil, err
		}
		return []*realtime.Event{taskEvent(TaskCreated, &t, p, "")}, nil
	})
	return t, err
}

// UpdateTask changes a task's title, description or status.
func (s *Service) UpdateTask(ctx context.Context, taskID string, ch TaskChange) (store.Task, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Task{}, err
	}
	var patch store.TaskPatch
	if ch.Title != nil {
		t, err := text("title", *ch.Title, true, MaxTitleLen)
		if err != nil {
			return store.Task{}, err
		}
		patch.Title = &t
	}
	if ch.Description != nil {
		d, err := text("description", *ch.Description, false, MaxDescriptionLen)
		if err != nil {
			return store.Task{}, err
		}
		patch.Description = &d
	}
	if ch.Status != nil {
		if !ch.Status.Valid() {
			return store.Task{}, errs.E(errs.BadUserInput, "unknown status %q", *ch.Status)
		}
		patch.Status = ch.Status
	}
	if patch == (store.TaskPatch{}) {
		return store.Task{}, errs.E(errs.BadUserInput, "nothing to update")
	}
	var t store.Task
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		_, p, err := changeableTask(ctx, tx, v, taskID, false, nil)
		if err != nil {
			return nil, err
		}
		if t, err = tx.UpdateTask(ctx, taskID, patch); err != nil {
			return nil, err
		}
		return []*realtime.Event{taskEvent(TaskUpdated, &t, p, "")}, nil
	})
	return t, err
}

// AssignTask assigns a task to a user. The previous assignee, read under
// the task's lock in the same unit of work, is told the task left them.
func (s *Service) AssignTask(ctx context.Context, taskID, userID string) (store.Task, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Task{}, err
	}
	var t store.Task
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		old, p, err := changeableTask(ctx, tx, v, taskID, false, func(first store.Task) error {
			return checkAssignee(ctx, tx, v, first.UserID, first.ProjectID, userID)
		})
		if err != nil {
			return nil, err
		}
		if t, err = tx.UpdateTask(ctx, taskID, store.TaskPatch{AssignedTo: &userID}); err != nil {
			return nil, err
		}
		prev := ""
		if old.AssignedTo != userID {
			prev = old.AssignedTo
		}
		return []*realtime.Event{taskEvent(TaskAssigned, &t, p, prev)}, nil
	})
	return t, err
}

// DeleteTask deletes a task and returns its id.
func (s *Service) DeleteTask(ctx context.Context, taskID string) (string, error) {
	v, err := viewer(ctx)
	if err != nil {
		return "", err
	}
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		_, p, err := changeableTask(ctx, tx, v, taskID, true, nil)
		if err != nil {
			return nil, err
		}
		t, err := tx.DeleteTask(ctx, taskID)
		if err != nil {
			return nil, err
		}
		t.UpdatedAt = store.Now()
		return []*realtime.Event{taskEvent(TaskDeleted, &t, p, "")}, nil
	})
	if err != nil {
		return "", err
	}
	return taskID, nil
}
