package sqlite

import (
	"context"
	"database/sql"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

const projectCols = `p.id, p.name, p.owner_id, p.team_id, p.created_at, p.updated_at`

const (
	insertProjectQuery = `INSERT INTO projects
		(id, name, owner_id, team_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`
	insertProjectMemberQuery = `INSERT INTO project_members (project_id, user_id) VALUES (?, ?)
		ON CONFLICT DO NOTHING`
	deleteProjectMemberQuery = `DELETE FROM project_members WHERE project_id = ? AND user_id = ?`
	getProjectQuery          = `SELECT ` + projectCols + ` FROM projects p WHERE p.id = ?`
	updateProjectQuery       = `UPDATE projects SET name = ?, updated_at = ? WHERE id = ?`
	deleteProjectQuery       = `DELETE FROM projects WHERE id = ?`
	isProjectMemberQuery     = `SELECT EXISTS (SELECT 1 FROM project_members WHERE project_id = ? AND user_id = ?)`
	projectMembersQuery      = `SELECT ` + userCols + `
		FROM project_members m JOIN users u ON u.id = m.user_id
		WHERE m.project_id = ? ORDER BY u.id`
	// allUserProjectsQuery is every project of a user, for the server's
	// own use; clients page (userProjects*Query).
	allUserProjectsQuery = `SELECT ` + projectCols + `
		FROM project_members m JOIN projects p ON p.id = m.project_id
		WHERE m.user_id = ? ORDER BY m.project_id`
	// The pages of a user's projects (see paging.go), in order from
	// project_members_by_user. Parameters: user, limit.
	userProjectsQuery = `SELECT ` + projectCols + `
		FROM project_members m JOIN projects p ON p.id = m.project_id
		WHERE m.user_id = ? ORDER BY m.project_id LIMIT ?`
	// The key is the After project's id if the user is a member.
	// Parameters: user, user, after, limit.
	userProjectsAfterQuery = `SELECT ` + projectCols + `
		FROM project_members m JOIN projects p ON p.id = m.project_id
		WHERE m.user_id = ?
			AND m.project_id > (SELECT k.project_id FROM project_members k WHERE k.user_id = ? AND k.project_id = ?)
		ORDER BY m.project_id LIMIT ?`
	// sharesQuery walks from a's memberships (by-user index) to b's
	// (primary key). Parameters: b, a, b, a.
	sharesQuery = `SELECT
		EXISTS (SELECT 1 FROM team_members x
			JOIN team_members y ON y.team_id = x.team_id AND y.user_id = ?
			WHERE x.user_id = ?)
		OR EXISTS (SELECT 1 FROM project_members x
			JOIN project_members y ON y.project_id = x.project_id AND y.user_id = ?
			WHERE x.user_id = ?)`
)

func scanProject(sc scanner) (store.Project, error) {
	var p store.Project
	var team sql.NullString
	var created, updated int64
	if err := sc.Scan(&p.ID, &p.Name, &p.OwnerID, &team, &created, &updated); err != nil {
		return store.Project{}, err
	}
	p.TeamID = team.String
	p.CreatedAt = fromMicros(created)
	p.UpdatedAt = fromMicros(updated)
	return p, nil
}

// CreateProject stores the project and makes its owner a member, in one
// transaction.
func (s *Store) CreateProject(ctx context.Context, p store.Project) (store.Project, error) {
	if p.ID == "" {
		p.ID = store.NewID("prj")
	}
	p.CreatedAt, p.UpdatedAt = stampNew(p.CreatedAt, p.UpdatedAt)
	err := s.write(ctx, func(tx queryer) error {
		if err := mustExist(ctx, tx, kindUser, p.OwnerID); err != nil {
			return err
		}
		if p.TeamID != "" {
			if err := mustExist(ctx, tx, kindTeam, p.TeamID); err != nil {
				return err
			}
		}
		if err := mustBeNew(ctx, tx, kindProject, p.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, insertProjectQuery, p.ID, p.Name, p.OwnerID, nullable(p.TeamID), micros(p.CreatedAt), micros(p.UpdatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, insertProjectMemberQuery, p.ID, p.OwnerID)
		return err
	})
	if err != nil {
		return store.Project{}, wrap("create project", err)
	}
	return p, nil
}

// Project returns the project with the id.
func (s *Store) Project(ctx context.Context, id string) (store.Project, error) {
	p, err := getProject(ctx, s.rq(), id)
	return p, wrap("get project", err)
}

func getProject(ctx context.Context, q queryer, id string) (store.Project, error) {
	return getByID(ctx, q, kindProject, getProjectQuery, scanProject, id)
}

// UpdateProject applies the patch and moves UpdatedAt forward.
func (s *Store) UpdateProject(ctx context.Context, id string, patch store.ProjectPatch) (store.Project, error) {
	var p store.Project
	err := s.write(ctx, func(tx queryer) error {
		var err error
		if p, err = getProject(ctx, tx, id); err != nil {
			return err
		}
		if patch.Name != nil {
			p.Name = *patch.Name
		}
		p.UpdatedAt = later(store.Now(), p.UpdatedAt)
		_, err = tx.ExecContext(ctx, updateProjectQuery, p.Name, micros(p.UpdatedAt), id)
		return err
	})
	if err != nil {
		return store.Project{}, wrap("update project", err)
	}
	return p, nil
}

// DeleteProject deletes the project; the foreign keys cascade to its
// memberships and tasks. It returns the project and tasks as they were.
func (s *Store) DeleteProject(ctx context.Context, id string) (store.Project, []store.Task, error) {
	var (
		p     store.Project
		tasks []store.Task
	)
	err := s.write(ctx, func(tx queryer) error {
		var err error
		if p, err = getProject(ctx, tx, id); err != nil {
			return err
		}
		if tasks, err = projectTasks(ctx, tx, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, deleteProjectQuery, id)
		return err
	})
	if err != nil {
		return store.Project{}, nil, wrap("delete project", err)
	}
	return p, tasks, nil
}

// AddProjectMember makes the user a member; added is false when they
// already were one.
func (s *Store) AddProjectMember(ctx context.Context, projectID, userID string) (bool, error) {
	return s.addMember(ctx, "add project member", kindProject, projectID, userID, insertProjectMemberQuery)
}

// RemoveProjectMember ends the user's membership; removed is false when
// they were not a member. The owner cannot be removed (BadUserInput): a
// project's owner is always a member.
func (s *Store) RemoveProjectMember(ctx context.Context, projectID, userID string) (bool, error) {
	var removed bool
	err := s.write(ctx, func(tx queryer) error {
		p, err := getProject(ctx, tx, projectID)
		if err != nil {
			return err
		}
		if err := mustExist(ctx, tx, kindUser, userID); err != nil {
			return err
		}
		if userID == p.OwnerID {
			return errs.E(errs.BadUserInput, "the owner of project %q cannot leave it", projectID)
		}
		removed, err = changedOne(ctx, tx, deleteProjectMemberQuery, projectID, userID)
		return err
	})
	if err != nil {
		return false, wrap("remove project member", err)
	}
	return removed, nil
}

// ProjectMembers lists the project's members, the owner included, ordered
// by user id.
func (s *Store) ProjectMembers(ctx context.Context, projectID string) ([]store.User, error) {
	return listUnder(ctx, s, "list project members", kindProject, projectID, scanUser, projectMembersQuery, projectID)
}

// IsProjectMember reports whether the user is a member of the project; a
// missing project or user is simply not a membership.
func (s *Store) IsProjectMember(ctx context.Context, projectID, userID string) (bool, error) {
	ok, err := queryBool(ctx, s.rq(), isProjectMemberQuery, projectID, userID)
	return ok, wrap("check project member", err)
}

// UserProjects lists one page of the projects the user is a member of,
// ordered by id.
func (s *Store) UserProjects(ctx context.Context, userID string, p store.Page) ([]store.Project, error) {
	return listPage(ctx, s, "list user projects", kindUser, userID, p, scanProject,
		stmt{userProjectsQuery, []any{userID, p.Limit}},
		stmt{userProjectsAfterQuery, []any{userID, userID, p.After, p.Limit}},
		stmt{isProjectMemberQuery, []any{p.After, userID}})
}

// AllUserProjects lists every project the user is a member of, ordered by
// id: for the server's own use, never a client's listing.
func (s *Store) AllUserProjects(ctx context.Context, userID string) ([]store.Project, error) {
	return listUnder(ctx, s, "list all user projects", kindUser, userID, scanProject, allUserProjectsQuery, userID)
}

// SharesTeamOrProject reports whether a and b are members of a common team
// or project; everyone shares with themself.
func (s *Store) SharesTeamOrProject(ctx context.Context, a, b string) (bool, error) {
	if a == b {
		return true, nil
	}
	ok, err := queryBool(ctx, s.rq(), sharesQuery, b, a, b, a)
	return ok, wrap("check shared membership", err)
}
