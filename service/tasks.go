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
	t, _, err := s.readableTask(ctx, v, taskID)
	return t, err
}

// readableTask loads a task, its project (when it has one) and checks the
// viewer may see it.
func (s *Service) readableTask(ctx context.Context, v auth.Viewer, taskID string) (store.Task, *store.Project, error) {
	if err := id("id", taskID); err != nil {
		return store.Task{}, nil, err
	}
	t, err := s.store.Task(ctx, taskID)
	if err != nil {
		return store.Task{}, nil, err
	}
	var p *store.Project
	if t.ProjectID != "" {
		pr, err := s.store.Project(ctx, t.ProjectID)
		if err != nil {
			return store.Task{}, nil, err
		}
		p = &pr
	}
	if v.Admin || t.UserID == v.UserID || t.AssignedTo == v.UserID {
		return t, p, nil
	}
	if p != nil {
		ok, err := s.store.IsProjectMember(ctx, p.ID, v.UserID)
		if err != nil {
			return store.Task{}, nil, err
		}
		if ok {
			return t, p, nil
		}
	}
	return store.Task{}, nil, errs.E(errs.Forbidden, "you may not see task %q", taskID)
}

// changeableTask checks the viewer may change the task: a project's
// members change its tasks; a personal task is changed by its owner or
// assignee; deleting a personal task is its owner's.
func (s *Service) changeableTask(ctx context.Context, v auth.Viewer, taskID string, deleting bool) (store.Task, *store.Project, error) {
	t, p, err := s.readableTask(ctx, v, taskID)
	if err != nil {
		return store.Task{}, nil, err
	}
	if v.Admin {
		return t, p, nil
	}
	if p != nil {
		ok, err := s.store.IsProjectMember(ctx, p.ID, v.UserID)
		if err != nil {
			return store.Task{}, nil, err
		}
		if !ok {
			return store.Task{}, nil, errs.E(errs.Forbidden, "only members of project %q change its tasks", p.ID)
		}
		return t, p, nil
	}
	if t.UserID == v.UserID || (!deleting && t.AssignedTo == v.UserID) {
		return t, p, nil
	}
	return store.Task{}, nil, errs.E(errs.Forbidden, "only the task's owner may delete it")
}

// checkAssignee enforces who a task may be assigned to: a member of its
// project, or, outside any project, a user who shares a team or project
// with the task's owner (or the owner). The assignee must also be a user
// the caller may see: anyone else is NOT_FOUND, exactly as an id that does
// not exist; FORBIDDEN is only for users the caller sees anyway.
func (s *Service) checkAssignee(ctx context.Context, v auth.Viewer, ownerID, projectID, assignee string) error {
	if err := id("assignee", assignee); err != nil {
		return err
	}
	if _, err := s.visibleUser(ctx, v, assignee, v.Admin); err != nil {
		return err
	}
	var ok bool
	var err error
	if projectID != "" {
		ok, err = s.store.IsProjectMember(ctx, projectID, assignee)
	} else {
		ok, err = s.store.SharesTeamOrProject(ctx, ownerID, assignee)
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
	if _, err := s.memberProject(ctx, v, *projectID); err != nil {
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
	var p *store.Project
	if in.ProjectID != "" {
		pr, err := s.memberProject(ctx, v, in.ProjectID)
		if err != nil {
			return store.Task{}, err
		}
		p = &pr
	}
	if in.AssignedTo != "" {
		if err := s.checkAssignee(ctx, v, v.UserID, in.ProjectID, in.AssignedTo); err != nil {
			return store.Task{}, err
		}
	}
	var t store.Task
	err = s.commit(ctx, func() ([]*realtime.Event, error) {
		var err error
		t, err = s.store.CreateTask(ctx, store.Task{
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
	_, p, err := s.changeableTask(ctx, v, taskID, false)
	if err != nil {
		return store.Task{}, err
	}
	var t store.Task
	err = s.commit(ctx, func() ([]*realtime.Event, error) {
		var err error
		if t, err = s.store.UpdateTask(ctx, taskID, patch); err != nil {
			return nil, err
		}
		return []*realtime.Event{taskEvent(TaskUpdated, &t, p, "")}, nil
	})
	return t, err
}

// AssignTask assigns a task to a user.
func (s *Service) AssignTask(ctx context.Context, taskID, userID string) (store.Task, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Task{}, err
	}
	old, p, err := s.changeableTask(ctx, v, taskID, false)
	if err != nil {
		return store.Task{}, err
	}
	if err := s.checkAssignee(ctx, v, old.UserID, old.ProjectID, userID); err != nil {
		return store.Task{}, err
	}
	var t store.Task
	err = s.commit(ctx, func() ([]*realtime.Event, error) {
		var err error
		if t, err = s.store.UpdateTask(ctx, taskID, store.TaskPatch{AssignedTo: &userID}); err != nil {
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
	_, p, err := s.changeableTask(ctx, v, taskID, true)
	if err != nil {
		return "", err
	}
	err = s.commit(ctx, func() ([]*realtime.Event, error) {
		t, err := s.store.DeleteTask(ctx, taskID)
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
