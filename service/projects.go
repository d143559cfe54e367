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
	var p store.Project
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		if teamID != "" {
			if _, err := memberTeam(ctx, tx, v, teamID); err != nil {
				return nil, err
			}
		}
		var err error
		p, err = tx.CreateProject(ctx, store.Project{Name: name, OwnerID: v.UserID, TeamID: teamID})
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
	return memberProject(ctx, s.store, v, projectID)
}

// ProjectMembers lists the members of a project the caller may read
// (Project.members), ordered by id.
func (s *Service) ProjectMembers(ctx context.Context, projectID string) ([]store.User, error) {
	if _, err := s.Project(ctx, projectID); err != nil {
		return nil, err
	}
	return s.store.ProjectMembers(ctx, projectID)
}

// ownedProject loads a project and checks the viewer owns it (or is admin).
func ownedProject(ctx context.Context, q store.Queries, v auth.Viewer, projectID string) (store.Project, error) {
	p, err := loadProject(ctx, q, projectID)
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
	var p store.Project
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		if _, err := ownedProject(ctx, tx, v, projectID); err != nil {
			return nil, err
		}
		if name == nil {
			return nil, errs.E(errs.BadUserInput, "nothing to update")
		}
		n, err := text("name", *name, true, MaxNameLen)
		if err != nil {
			return nil, err
		}
		if p, err = tx.UpdateProject(ctx, projectID, store.ProjectPatch{Name: &n}); err != nil {
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
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		if _, err := ownedProject(ctx, tx, v, projectID); err != nil {
			return nil, err
		}
		// The deletion takes the memberships: its events show the members
		// the project had.
		members, err := tx.ProjectMembers(ctx, projectID)
		if err != nil {
			return nil, err
		}
		snap := &Snapshot{ProjectMembers: s.eventUsers(members)}
		p, tasks, err := tx.DeleteProject(ctx, projectID)
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
	var p store.Project
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		var err error
		if p, err = ownedProject(ctx, tx, v, projectID); err != nil {
			return nil, err
		}
		if err := id("userId", userID); err != nil {
			return nil, err
		}
		u, err := visibleUser(ctx, tx, v, userID, v.Admin)
		if err != nil {
			return nil, err
		}
		if !v.Admin {
			ok, err := tx.SharesTeam(ctx, p.OwnerID, userID)
			if err == nil && !ok {
				ok, err = tx.IsProjectMember(ctx, projectID, userID) // adding again is a no-op
			}
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, errs.E(errs.Forbidden, "user %q shares no team with you: invite them to a team first", userID)
			}
		}
		added, err := tx.AddProjectMember(ctx, projectID, userID)
		if err != nil || !added {
			return nil, err
		}
		return []*realtime.Event{projectMemberEvent(ProjectMemberAdded, realtime.Join, p, u)}, nil
	})
	if err != nil {
		return store.Project{}, err
	}
	return p, nil
}

// RemoveProjectMember removes a user from a project: the owner or an admin
// removes anyone, any member removes themself (leaves). The owner cannot be
// removed. Removing a user who is not a member (or does not exist) changes
// nothing and answers the project. The removed user's open projectUpdates
// end with FORBIDDEN and their taskUpdates stop carrying the project.
//
// The answer also holds the project's members as the change left them,
// read in its unit of work: a member who just left may no longer read them
// (ProjectMembers) but sees them in the answer, as before they left.
func (s *Service) RemoveProjectMember(ctx context.Context, projectID, userID string) (store.Project, []store.User, error) {
	v, err := viewer(ctx)
	if err != nil {
		return store.Project{}, nil, err
	}
	var (
		p       store.Project
		members []store.User
	)
	err = s.update(ctx, func(tx store.Tx) ([]*realtime.Event, error) {
		var err error
		if p, err = loadProject(ctx, tx, projectID); err != nil {
			return nil, err
		}
		if err := id("userId", userID); err != nil {
			return nil, err
		}
		if p.OwnerID != v.UserID && !v.Admin {
			if userID != v.UserID {
				return nil, errs.E(errs.Forbidden, "only the project's owner or an admin removes others; members may leave project %q", projectID)
			}
			if _, err := memberProject(ctx, tx, v, projectID); err != nil {
				return nil, err
			}
		}
		if userID == p.OwnerID {
			return nil, errs.E(errs.BadUserInput, "the owner cannot be removed from their project")
		}
		// The removal itself tells whether userID was a member: checking
		// first would lock the membership shared, and an owner removing a
		// member while they leave would deadlock (store/postgres). A user
		// the caller may not see and an unknown id both change nothing,
		// alike.
		var events []*realtime.Event
		u, err := tx.User(ctx, userID)
		switch {
		case errs.Is(err, errs.NotFound):
		case err != nil:
			return nil, err
		default:
			removed, err := tx.RemoveProjectMember(ctx, projectID, userID)
			if err != nil {
				return nil, err
			}
			if removed {
				events = append(events, projectMemberEvent(ProjectMemberRemoved, realtime.Leave, p, u))
			}
		}
		members, err = tx.ProjectMembers(ctx, projectID)
		return events, err
	})
	if err != nil {
		return store.Project{}, nil, err
	}
	return p, members, nil
}

// projectMemberEvent is PROJECT_MEMBER_ADDED (with Join) or
// PROJECT_MEMBER_REMOVED (with Leave) of u, addressed to the project's room.
func projectMemberEvent(typ string, op realtime.ControlOp, p store.Project, u store.User) *realtime.Event {
	return newEvent(typ, store.Now(), EventData{Project: &p, Member: &u},
		&realtime.Control{Op: op, UserID: u.ID, Room: realtime.RoomProject(p.ID)},
		realtime.RoomProject(p.ID))
}
