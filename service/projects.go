package service

import (
	"context"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// CreateProject creates a project owned by the caller, optionally in a team
// the caller belongs to.
func (s *Service) CreateProject(ctx context.Context, name, teamID string) (store.Project, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Project{}, err
	}
	if name, err = text("name", name, true, MaxNameLen); err != nil {
		return store.Project{}, err
	}
	if teamID != "" {
		if _, err := s.Team(ctx, teamID); err != nil {
			return store.Project{}, err
		}
	}
	var p store.Project
	err = s.commit(ctx, func() ([]*realtime.Event, error) {
		var err error
		p, err = s.store.CreateProject(ctx, store.Project{Name: name, OwnerID: v.UserID, TeamID: teamID})
		if err != nil {
			return nil, err
		}
		// The owner joins the project's room: their open taskUpdates start
		// carrying its tasks.
		ev := newEvent(ProjectCreated, p.CreatedAt, EventData{Project: &p},
			&realtime.Control{Op: realtime.Join, UserID: v.UserID, Room: realtime.RoomProject(p.ID)},
			realtime.RoomProject(p.ID))
		return []*realtime.Event{ev}, nil
	})
	return p, err
}

// Project returns a project the caller is a member of (admins: any).
func (s *Service) Project(ctx context.Context, projectID string) (store.Project, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Project{}, err
	}
	return s.memberProject(ctx, v, projectID)
}

// loadProject validates the id and loads the project.
func (s *Service) loadProject(ctx context.Context, projectID string) (store.Project, error) {
	if err := id("projectId", projectID); err != nil {
		return store.Project{}, err
	}
	return s.store.Project(ctx, projectID)
}

// memberProject loads a project and checks the viewer may read it.
func (s *Service) memberProject(ctx context.Context, v auth.Viewer, projectID string) (store.Project, error) {
	p, err := s.loadProject(ctx, projectID)
	if err != nil {
		return store.Project{}, err
	}
	if v.Admin {
		return p, nil
	}
	ok, err := s.store.IsProjectMember(ctx, projectID, v.UserID)
	if err != nil {
		return store.Project{}, err
	}
	if !ok {
		return store.Project{}, errs.E(errs.Forbidden, "you are not a member of project %q", projectID)
	}
	return p, nil
}

// ownedProject loads a project and checks the viewer owns it (or is admin).
func (s *Service) ownedProject(ctx context.Context, v auth.Viewer, projectID string) (store.Project, error) {
	p, err := s.loadProject(ctx, projectID)
	if err != nil {
		return store.Project{}, err
	}
	if p.OwnerID != v.UserID && !v.Admin {
		return store.Project{}, errs.E(errs.Forbidden, "only the project's owner or an admin may do this")
	}
	return p, nil
}

// Projects lists one page of the caller's projects, by id.
func (s *Service) Projects(ctx context.Context, args PageArgs) ([]store.Project, error) {
	v, err := viewer(ctx)
	if err != nil {
		return nil, err
	}
	page, err := args.page("first")
	if err != nil {
		return nil, err
	}
	return s.store.UserProjects(ctx, v.UserID, page)
}

// UpdateProject renames a project: owner or admin.
func (s *Service) UpdateProject(ctx context.Context, projectID string, name *string) (store.Project, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Project{}, err
	}
	p, err := s.ownedProject(ctx, v, projectID)
	if err != nil {
		return store.Project{}, err
	}
	if name == nil {
		return store.Project{}, errs.E(errs.BadUserInput, "nothing to update")
	}
	n, err := text("name", *name, true, MaxNameLen)
	if err != nil {
		return store.Project{}, err
	}
	err = s.commit(ctx, func() ([]*realtime.Event, error) {
		var err error
		p, err = s.store.UpdateProject(ctx, projectID, store.ProjectPatch{Name: &n})
		if err != nil {
			return nil, err
		}
		return []*realtime.Event{newEvent(ProjectUpdated, p.UpdatedAt, EventData{Project: &p}, nil, realtime.RoomProject(p.ID))}, nil
	})
	return p, err
}

// DeleteProject deletes a project and its tasks: owner or admin. Each task's
// deletion is published (owners and assignees outside the project learn it),
// then the project's, which closes its room.
func (s *Service) DeleteProject(ctx context.Context, projectID string) (string, error) {
	v, err := viewer(ctx)
	if err != nil {
		return "", err
	}
	if _, err := s.ownedProject(ctx, v, projectID); err != nil {
		return "", err
	}
	err = s.commit(ctx, func() ([]*realtime.Event, error) {
		// The deletion takes the memberships: its events show the members
		// the project had.
		members, err := s.store.ProjectMembers(ctx, projectID)
		if err != nil {
			return nil, err
		}
		snap := &Snapshot{ProjectMembers: s.eventUsers(members)}
		p, tasks, err := s.store.DeleteProject(ctx, projectID)
		if err != nil {
			return nil, err
		}
		now := store.Now()
		events := make([]*realtime.Event, 0, len(tasks)+1)
		for i := range tasks {
			t := &tasks[i]
			events = append(events, newEvent(TaskDeleted, now, EventData{Task: t, Project: &p, Snapshot: snap}, nil,
				userRoom(t.UserID), userRoom(t.AssignedTo), projectRoom(p.ID)))
		}
		events = append(events, newEvent(ProjectDeleted, now, EventData{Project: &p, Snapshot: snap},
			&realtime.Control{Op: realtime.CloseRoom, Room: realtime.RoomProject(p.ID)},
			realtime.RoomProject(p.ID)))
		return events, nil
	})
	if err != nil {
		return "", err
	}
	return projectID, nil
}

// AddProjectMember adds a user to a project: its owner adds users who
// share a team with them (a team is joined by consent); an admin adds
// anyone. A user the caller may not see is NOT_FOUND, exactly as an id
// that does not exist. Adding a member twice is not an error and publishes
// nothing.
func (s *Service) AddProjectMember(ctx context.Context, projectID, userID string) (store.Project, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Project{}, err
	}
	p, err := s.ownedProject(ctx, v, projectID)
	if err != nil {
		return store.Project{}, err
	}
	if err := id("userId", userID); err != nil {
		return store.Project{}, err
	}
	u, err := s.visibleUser(ctx, v, userID, v.Admin)
	if err != nil {
		return store.Project{}, err
	}
	if !v.Admin {
		ok, err := s.store.SharesTeam(ctx, p.OwnerID, userID)
		if err == nil && !ok {
			ok, err = s.store.IsProjectMember(ctx, projectID, userID) // adding again is a no-op
		}
		if err != nil {
			return store.Project{}, err
		}
		if !ok {
			return store.Project{}, errs.E(errs.Forbidden, "user %q shares no team with you: invite them to a team first", userID)
		}
	}
	err = s.commit(ctx, func() ([]*realtime.Event, error) {
		added, err := s.store.AddProjectMember(ctx, projectID, userID)
		if err != nil || !added {
			return nil, err
		}
		return []*realtime.Event{projectMemberEvent(ProjectMemberAdded, realtime.Join, p, u)}, nil
	})
	return p, err
}

// RemoveProjectMember removes a user from a project: the owner or an admin
// removes anyone, any member removes themself (leaves). The owner cannot be
// removed. Removing a user who is not a member (or does not exist) changes
// nothing and answers the project. The removed user's open projectUpdates
// end with FORBIDDEN and their taskUpdates stop carrying the project.
func (s *Service) RemoveProjectMember(ctx context.Context, projectID, userID string) (store.Project, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Project{}, err
	}
	p, err := s.loadProject(ctx, projectID)
	if err != nil {
		return store.Project{}, err
	}
	if err := id("userId", userID); err != nil {
		return store.Project{}, err
	}
	if p.OwnerID != v.UserID && !v.Admin {
		if userID != v.UserID {
			return store.Project{}, errs.E(errs.Forbidden, "only the project's owner or an admin removes others; members may leave project %q", projectID)
		}
		if _, err := s.memberProject(ctx, v, projectID); err != nil {
			return store.Project{}, err
		}
	}
	if userID == p.OwnerID {
		return store.Project{}, errs.E(errs.BadUserInput, "the owner cannot be removed from their project")
	}
	// Only a member is read and removed: a user the caller may not see and
	// an unknown id both end here, alike.
	member, err := s.store.IsProjectMember(ctx, projectID, userID)
	if err != nil || !member {
		return p, err
	}
	u, err := s.store.User(ctx, userID)
	if err != nil {
		return store.Project{}, err
	}
	err = s.commit(ctx, func() ([]*realtime.Event, error) {
		removed, err := s.store.RemoveProjectMember(ctx, projectID, userID)
		if err != nil || !removed {
			return nil, err
		}
		return []*realtime.Event{projectMemberEvent(ProjectMemberRemoved, realtime.Leave, p, u)}, nil
	})
	return p, err
}

// projectMemberEvent is PROJECT_MEMBER_ADDED (with Join) or
// PROJECT_MEMBER_REMOVED (with Leave) of u, addressed to the project's room.
func projectMemberEvent(typ string, op realtime.ControlOp, p store.Project, u store.User) *realtime.Event {
	return newEvent(typ, store.Now(), EventData{Project: &p, Member: &u},
		&realtime.Control{Op: op, UserID: u.ID, Room: realtime.RoomProject(p.ID)},
		realtime.RoomProject(p.ID))
}
