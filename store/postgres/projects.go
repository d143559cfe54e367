package postgres

import (
	"context"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/store"
)

const projectCols = `p.id, p.name, p.owner_id, COALESCE(p.team_id, ''), p.created_at, p.updated_at`

const (
	insertProjectQuery = `INSERT INTO projects
		(id, name, owner_id, team_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO NOTHING`
	insertProjectMemberQuery = `INSERT INTO project_members (project_id, user_id) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`
	deleteProjectMemberQuery = `DELETE FROM project_members WHERE project_id = $1 AND user_id = $2`
	getProjectQuery          = `SELECT ` + projectCols + ` FROM projects p WHERE p.id = $1`
	// lockProjectQuery reads the project that DeleteProject is about to
	// delete and locks it: inserts under it (which hold FOR KEY SHARE on it)
	// finish first, later ones find it gone.
	lockProjectQuery   = getProjectQuery + ` FOR UPDATE`
	updateProjectQuery = `UPDATE projects p SET name = COALESCE($2, p.name), updated_at = GREATEST($3, p.updated_at)
		WHERE p.id = $1 RETURNING ` + projectCols
	deleteProjectQuery   = `DELETE FROM projects WHERE id = $1`
	isProjectMemberQuery = `SELECT EXISTS (SELECT 1 FROM project_members WHERE project_id = $1 AND user_id = $2)`
	// lockProjectMemberQuery is a unit of work's membership check: the row,
	// if any, stays until the unit ends (a removal waits for the unit).
	lockProjectMemberQuery = `SELECT true FROM project_members WHERE project_id = $1 AND user_id = $2 FOR SHARE`
	projectMembersQuery    = `SELECT ` + userCols + `
		FROM project_members m JOIN users u ON u.id = m.user_id
		WHERE m.project_id = $1 ORDER BY u.id`
	// allUserProjectsQuery is every project of a user, for the server's
	// own use; clients page (userProjects*Query).
	allUserProjectsQuery = `SELECT ` + projectCols + `
		FROM project_members m JOIN projects p ON p.id = m.project_id
		WHERE m.user_id = $1 ORDER BY m.project_id`
	// The pages of a user's projects (see paging.go), in order from
	// project_members_by_user. Parameters: user, limit.
	userProjectsQuery = `SELECT ` + projectCols + `
		FROM project_members m JOIN projects p ON p.id = m.project_id
		WHERE m.user_id = $1 ORDER BY m.project_id LIMIT $2`
	// The key is the After project's id if the user is a member.
	// Parameters: user, limit, after.
	userProjectsAfterQuery = `SELECT ` + projectCols + `
		FROM project_members m JOIN projects p ON p.id = m.project_id
		WHERE m.user_id = $1
			AND m.project_id > (SELECT k.project_id FROM project_members k WHERE k.user_id = $1 AND k.project_id = $3)
		ORDER BY m.project_id LIMIT $2`
	// sharesQuery walks from a's memberships (by-user index) to b's
	// (primary key). Parameters: a, b.
	sharesQuery = `SELECT
		EXISTS (SELECT 1 FROM team_members x
			JOIN team_members y ON y.team_id = x.team_id AND y.user_id = $2
			WHERE x.user_id = $1)
		OR EXISTS (SELECT 1 FROM project_members x
			JOIN project_members y ON y.project_id = x.project_id AND y.user_id = $2
			WHERE x.user_id = $1)`
)

func scanProject(sc scanner) (store.Project, error) {
	var p store.Project
	if err := sc.Scan(&p.ID, &p.Name, &p.OwnerID, &p.TeamID, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return store.Project{}, err
	}
	p.CreatedAt, p.UpdatedAt = utc(p.CreatedAt), utc(p.UpdatedAt)
	return p, nil
}

// CreateProject stores the project and makes its owner a member, in one
// transaction.
func (d db) CreateProject(ctx context.Context, p store.Project) (store.Project, error) {
	if p.ID == "" {
		p.ID = store.NewID("prj")
	}
	p.CreatedAt, p.UpdatedAt = stampNew(p.CreatedAt, p.UpdatedAt)
	err := d.write(ctx, func(q querier) error {
		if err := pin(ctx, q, kindUser, p.OwnerID); err != nil {
			return err
		}
		if p.TeamID != "" {
			if err := pin(ctx, q, kindTeam, p.TeamID); err != nil {
				return err
			}
		}
		created, err := changedOne(ctx, q, insertProjectQuery, p.ID, p.Name, p.OwnerID, nullable(p.TeamID), p.CreatedAt, p.UpdatedAt)
		if err != nil {
			return err
		}
		if !created {
			return alreadyExists(kindProject, p.ID)
		}
		_, err = q.Exec(ctx, insertProjectMemberQuery, p.ID, p.OwnerID)
		return err
	})
	if err != nil {
		return store.Project{}, wrap("create project", err)
	}
	return p, nil
}

// Project returns the project with the id.
func (d db) Project(ctx context.Context, id string) (store.Project, error) {
	p, err := getByID(ctx, d.q, kindProject, getProjectQuery, scanProject, id)
	return p, wrap("get project", err)
}

// UpdateProject applies the patch and moves UpdatedAt forward (never back,
// even if the clock does), in one statement.
func (d db) UpdateProject(ctx context.Context, id string, patch store.ProjectPatch) (store.Project, error) {
	p, err := getByID(ctx, d.q, kindProject, updateProjectQuery, scanProject, id, patch.Name, store.Now())
	return p, wrap("update project", err)
}

// DeleteProject deletes the project, its tasks and (by cascade) its
// memberships in one transaction, and returns the project and the tasks as
// they were deleted.
func (d db) DeleteProject(ctx context.Context, id string) (store.Project, []store.Task, error) {
	var (
		p     store.Project
		tasks []store.Task
	)
	err := d.write(ctx, func(q querier) error {
		var err error
		if p, err = getByID(ctx, q, kindProject, lockProjectQuery, scanProject, id); err != nil {
			return err
		}
		if tasks, err = query(ctx, q, scanTask, deleteProjectTasksQuery, id); err != nil {
			return err
		}
		_, err = q.Exec(ctx, deleteProjectQuery, id)
		return err
	})
	if err != nil {
		return store.Project{}, nil, wrap("delete project", err)
	}
	return p, tasks, nil
}

// AddProjectMember makes the user a member; added is false when they
// already were one.
func (d db) AddProjectMember(ctx context.Context, projectID, userID string) (bool, error) {
	var added bool
	err := d.write(ctx, func(q querier) error {
		if err := pin(ctx, q, kindProject, projectID); err != nil {
			return err
		}
		if err := pin(ctx, q, kindUser, userID); err != nil {
			return err
		}
		var err error
		added, err = changedOne(ctx, q, insertProjectMemberQuery, projectID, userID)
		return err
	})
	if err != nil {
		return false, wrap("add project member", err)
	}
	return added, nil
}

// RemoveProjectMember ends the user's membership; removed is false when
// they were not a member. The owner cannot be removed (BadUserInput): a
// project's owner is always a member.
func (d db) RemoveProjectMember(ctx context.Context, projectID, userID string) (bool, error) {
	var removed bool
	err := d.write(ctx, func(q querier) error {
		// The owner never changes, so the project needs no lock.
		p, err := getByID(ctx, q, kindProject, getProjectQuery, scanProject, projectID)
		if err != nil {
			return err
		}
		if err := mustExist(ctx, q, kindUser, userID); err != nil {
			return err
		}
		if userID == p.OwnerID {
			return errs.E(errs.BadUserInput, "the owner of project %q cannot leave it", projectID)
		}
		removed, err = changedOne(ctx, q, deleteProjectMemberQuery, projectID, userID)
		return err
	})
	if err != nil {
		return false, wrap("remove project member", err)
	}
	return removed, nil
}

// ProjectMembers lists the project's members, the owner included, ordered
// by user id.
func (d db) ProjectMembers(ctx context.Context, projectID string) ([]store.User, error) {
	return listUnder(ctx, d, "list project members", kindProject, projectID, scanUser, projectMembersQuery, projectID)
}

// IsProjectMember reports whether the user is a member of the project; a
// missing project or user is simply not a membership. Inside a unit of
// work the answer holds until the unit ends: the project is pinned, then
// the membership row is locked FOR SHARE (in the package doc's lock order),
// so a removal of it, or the project's deletion, waits for the unit to
// commit; or the check, waiting for a removal in progress, sees it gone.
func (d db) IsProjectMember(ctx context.Context, projectID, userID string) (bool, error) {
	if !d.unit {
		ok, err := queryBool(ctx, d.q, isProjectMemberQuery, projectID, userID)
		return ok, wrap("check project member", err)
	}
	ok, err := lockedExists(ctx, d.q, kindProject.pinQuery(), projectID)
	if err == nil && ok {
		ok, err = lockedExists(ctx, d.q, lockProjectMemberQuery, projectID, userID)
	}
	return ok, wrap("check project member", err)
}

// UserProjects lists one page of the projects the user is a member of,
// ordered by id.
func (d db) UserProjects(ctx context.Context, userID string, p store.Page) ([]store.Project, error) {
	return listPage(ctx, d, "list user projects", kindUser, userID, p, scanProject,
		stmt{userProjectsQuery, []any{userID, p.Limit}},
		stmt{userProjectsAfterQuery, []any{userID, p.Limit, p.After}},
		stmt{isProjectMemberQuery, []any{p.After, userID}})
}

// AllUserProjects lists every project the user is a member of, ordered by
// id: for the server's own use, never a client's listing.
func (d db) AllUserProjects(ctx context.Context, userID string) ([]store.Project, error) {
	return listUnder(ctx, d, "list all user projects", kindUser, userID, scanProject, allUserProjectsQuery, userID)
}

// SharesTeamOrProject reports whether a and b are members of a common team
// or project; everyone shares with themself.
func (d db) SharesTeamOrProject(ctx context.Context, a, b string) (bool, error) {
	if a == b {
		return true, nil
	}
	ok, err := queryBool(ctx, d.q, sharesQuery, a, b)
	return ok, wrap("check shared membership", err)
}
