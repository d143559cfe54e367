// Package store owns taskpulse's domain records (users, teams, projects,
// tasks, notifications), the event log's entries, and the Store interface
// every database adapter implements. Adapters live in sub-packages
// (store/sqlite, store/postgres); store/storetest is the contract suite
// they all pass.
//
// The store knows nothing about who is asking: authorization is the service
// layer's job. Multi-row changes (a project and its owner's membership, a
// project and its tasks) are atomic inside one method, and a caller makes
// several methods and the events they cause atomic with Update: one
// transaction whose Tx offers every data method (Queries) and Append. The
// database numbers appended entries as the transaction's last step, so the
// log's order is the commit order across every process that shares it.
package store

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"

	"github.com/taskpulse/taskpulse/errs"
)

// TaskStatus is a task's workflow state.
type TaskStatus string

// Task states.
const (
	StatusTodo       TaskStatus = "TODO"
	StatusInProgress TaskStatus = "IN_PROGRESS"
	StatusDone       TaskStatus = "DONE"
)

// Valid reports whether s is one of the known states.
func (s TaskStatus) Valid() bool {
	return s == StatusTodo || s == StatusInProgress || s == StatusDone
}

// User is an account. IDs of users are chosen by whoever creates them.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email,omitempty"` // "" = none
	Admin     bool      `json:"admin,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// Disabled users are refused everywhere (disabling is how an account
	// is removed: its records stay).
	Disabled bool `json:"disabled,omitempty"`
	// SessionsRevokedAt (zero: never): tokens issued at or before it are
	// refused. AdminRevokedAt (zero: never): the admin role claim of tokens
	// issued at or before it is ignored. Both are set by the service when
	// it disables or demotes the user.
	SessionsRevokedAt time.Time `json:"sessionsRevokedAt,omitzero"`
	AdminRevokedAt    time.Time `json:"adminRevokedAt,omitzero"`
}

// UserPatch changes the non-nil fields of a user. Email set to "" removes
// it. A revocation instant only moves forward: an earlier one than stored
// is ignored.
type UserPatch struct {
	Name              *string
	Email             *string
	Admin             *bool
	Disabled          *bool
	SessionsRevokedAt *time.Time
	AdminRevokedAt    *time.Time
}

// Team groups users; its creator is its first member.
type Team struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
}

// Invitation is a team creator's pending invitation of a user to the team.
// Sharing a team unlocks a user's email, presence, notifications and
// assignment, so membership starts only when the invitee accepts.
type Invitation struct {
	TeamID    string    `json:"teamId"`
	TeamName  string    `json:"teamName"` // filled by listings; ignored by CreateInvitation
	UserID    string    `json:"userId"`   // the invitee
	InvitedBy string    `json:"invitedBy"`
	CreatedAt time.Time `json:"createdAt"`
}

// Project holds tasks; its owner is always a member.
type Project struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	OwnerID   string    `json:"ownerId"`
	TeamID    string    `json:"teamId,omitempty"` // "" = none
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Task is a unit of work, inside a project or personal (ProjectID "").
type Task struct {
	ID          string     `json:"id"`
	Title       string     `json:"title"`
	Description string     `json:"description,omitempty"` // "" = none
	Status      TaskStatus `json:"status"`
	ProjectID   string     `json:"projectId,omitempty"`  // "" = personal task
	UserID      string     `json:"userId"`               // owner (creator)
	AssignedTo  string     `json:"assignedTo,omitempty"` // "" = unassigned
	// Version starts at 1 and grows by one with every change, so a client
	// can tell a newer state of a task from an older one.
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Notification is a message to one user.
type Notification struct {
	ID        string    `json:"id"`
	UserID    string    `json:"userId"`
	SenderID  string    `json:"senderId,omitempty"` // "" = system
	Message   string    `json:"message"`
	Read      bool      `json:"read"`
	CreatedAt time.Time `json:"createdAt"`
}

// ProjectPatch changes the non-nil fields of a project.
type ProjectPatch struct {
	Name *string
}

// TaskPatch changes the non-nil fields of a task. AssignedTo set to ""
// unassigns.
type TaskPatch struct {
	Title       *string
	Description *string
	Status      *TaskStatus
	AssignedTo  *string
}

// MaxPageLimit is the most items one page of a listing holds. Adapters
// refuse more, so no request reads an unbounded list.
const MaxPageLimit = 200

// Page selects one page of a listing paged by keyset: the first Limit items
// (1 to MaxPageLimit) that come strictly after the item whose id is After,
// in the listing's order; After "" starts at the beginning. Pages follow
// the sort key of the After item (not a position), so items inserted or
// deleted between two pages cause neither duplicates nor gaps.
//
// After must name an item of that listing as the caller sees it now: an id
// that does not exist, another user's item, or one that has left the
// listing (deleted, or no longer visible) are one and the same
// BadUserInput, so the answer never tells whether an id exists. A listing
// under a missing parent (user, project) is NotFound, as unpaged listings.
type Page struct {
	After string
	Limit int
}

// Check returns a BadUserInput error unless p.Limit is within 1 and
// MaxPageLimit.
func (p Page) Check() error {
	if p.Limit < 1 || p.Limit > MaxPageLimit {
		return errs.E(errs.BadUserInput, "a page holds 1 to %d items, got %d", MaxPageLimit, p.Limit)
	}
	return nil
}

// BadAfter is the error for an After that names no item of the listing.
func BadAfter(after string) error {
	return errs.E(errs.BadUserInput, "after %q is not an item of this list (refetch from the first page)", after)
}

// Queries are the store's data methods: what a Store runs alone, each in
// its own transaction, and a Tx runs inside one. Methods return *errs.Error with
// errs.NotFound for missing records and errs.BadUserInput for conflicts
// (an existing user id); other errors are internal.
//
// Create methods fill in an empty ID (NewID) and the timestamps, and return
// the record as stored. Timestamps are UTC with microsecond precision, so
// every adapter round-trips them identically.
type Queries interface {
	CreateUser(ctx context.Context, u User) (User, error)
	User(ctx context.Context, id string) (User, error)
	// UpdateUser applies the patch atomically and returns the user as
	// stored.
	UpdateUser(ctx context.Context, id string, patch UserPatch) (User, error)

	// CreateTeam stores the team and makes its creator a member, atomically.
	CreateTeam(ctx context.Context, t Team) (Team, error)
	Team(ctx context.Context, id string) (Team, error)
	// AddTeamMember is idempotent: added is false when already a member. A
	// pending invitation of the user to the team goes in the same
	// transaction (an admin's add supersedes it).
	AddTeamMember(ctx context.Context, teamID, userID string) (added bool, err error)
	// RemoveTeamMember ends the user's membership or withdraws their pending
	// invitation; removed reports whether a membership ended. The team's
	// creator leaves only as its last member (BadUserInput while others
	// remain), and then the team's pending invitations go too, atomically.
	RemoveTeamMember(ctx context.Context, teamID, userID string) (removed bool, err error)
	// TeamMembers lists members ordered by user id.
	TeamMembers(ctx context.Context, teamID string) ([]User, error)
	IsTeamMember(ctx context.Context, teamID, userID string) (bool, error)
	// UserTeams lists one page of the user's teams, ordered by id; After
	// must be one of them.
	UserTeams(ctx context.Context, userID string, p Page) ([]Team, error)

	// CreateInvitation stores inv and, in the same transaction, notice: the
	// invitee's notification of it, whose UserID and SenderID are set from
	// inv and whose id and time are filled in as CreateNotification does.
	// It returns the stored notice. created is false, and nothing is
	// stored, when the invitee does not exist, is already a member or is
	// already invited: what an inviter sees never tells whether a user id
	// exists. A missing team or inviter is NotFound.
	CreateInvitation(ctx context.Context, inv Invitation, notice Notification) (stored Notification, created bool, err error)
	// UserInvitations lists the user's pending invitations, oldest first
	// (then by team id), with TeamName filled in.
	UserInvitations(ctx context.Context, userID string) ([]Invitation, error)
	// AcceptInvitation consumes the user's invitation to the team and makes
	// them a member, atomically; accepted is false (and nothing changes)
	// when there was no invitation.
	AcceptInvitation(ctx context.Context, teamID, userID string) (accepted bool, err error)
	// DeleteInvitation drops the user's invitation to the team; deleted is
	// false when there was none.
	DeleteInvitation(ctx context.Context, teamID, userID string) (deleted bool, err error)
	// SharesTeam reports whether a and b are both members of some team (a
	// user shares with themself).
	SharesTeam(ctx context.Context, a, b string) (bool, error)

	// CreateProject stores the project and makes its owner a member, atomically.
	CreateProject(ctx context.Context, p Project) (Project, error)
	Project(ctx context.Context, id string) (Project, error)
	UpdateProject(ctx context.Context, id string, patch ProjectPatch) (Project, error)
	// DeleteProject deletes the project, its memberships and its tasks,
	// atomically, and returns the deleted project and tasks.
	DeleteProject(ctx context.Context, id string) (Project, []Task, error)
	AddProjectMember(ctx context.Context, projectID, userID string) (added bool, err error)
	RemoveProjectMember(ctx context.Context, projectID, userID string) (removed bool, err error)
	// ProjectMembers lists members (the owner included) ordered by user id.
	ProjectMembers(ctx context.Context, projectID string) ([]User, error)
	IsProjectMember(ctx context.Context, projectID, userID string) (bool, error)
	// UserProjects lists one page of the projects the user is a member of,
	// ordered by id; After must be one of them.
	UserProjects(ctx context.Context, userID string, p Page) ([]Project, error)
	// AllUserProjects lists every project the user is a member of, ordered
	// by id, unpaged: for the server's own use (the rooms a subscription
	// follows), never for a client's listing.
	AllUserProjects(ctx context.Context, userID string) ([]Project, error)

	CreateTask(ctx context.Context, t Task) (Task, error)
	Task(ctx context.Context, id string) (Task, error)
	// LockTask returns the task, as Task does, and inside a unit of work
	// also keeps it from changing under the unit until it ends: a decision
	// on the task's current state (the previous assignee a reassignment
	// notifies) then holds when the unit commits, because a concurrent unit
	// that locks or changes the task waits for it and starts from what it
	// committed. Alone, or in a Read, it is Task.
	LockTask(ctx context.Context, id string) (Task, error)
	// UpdateTask applies the patch, bumps Version and UpdatedAt, atomically.
	UpdateTask(ctx context.Context, id string, patch TaskPatch) (Task, error)
	// DeleteTask deletes the task and returns it as it was.
	DeleteTask(ctx context.Context, id string) (Task, error)
	// ProjectTasks lists one page of a project's tasks ordered by creation,
	// then id; After must be one of them.
	ProjectTasks(ctx context.Context, projectID string, p Page) ([]Task, error)
	// VisibleTasks lists one page of the tasks the user owns, is assigned,
	// or that belong to a project the user is a member of; each once,
	// ordered by creation, then id. After must be one of them.
	VisibleTasks(ctx context.Context, userID string, p Page) ([]Task, error)

	CreateNotification(ctx context.Context, n Notification) (Notification, error)
	Notification(ctx context.Context, id string) (Notification, error)
	MarkNotificationRead(ctx context.Context, id string) (Notification, error)
	// UserNotifications lists one page of the user's notifications, newest
	// first (creation, then id, both descending); with unreadOnly, only
	// unread ones. After must be one of the user's notifications, read or
	// not: marking the last one of a page read does not break the walk.
	UserNotifications(ctx context.Context, userID string, unreadOnly bool, p Page) ([]Notification, error)

	// SharesTeamOrProject reports whether a and b are both members of some
	// team or some project (a user shares with themself).
	SharesTeamOrProject(ctx context.Context, a, b string) (bool, error)

	// SetSettingIfAbsent stores a small server setting (such as the
	// generated JWT key) unless key exists, and returns the value that is
	// stored afterwards: concurrent first starts agree on one.
	SetSettingIfAbsent(ctx context.Context, key, value string) (string, error)
}

// Store is the persistence boundary: the data methods, units of work
// (Update) and the event log they append to.
type Store interface {
	Queries
	Log

	// Update runs fn in one transaction and commits it, with the log
	// entries fn appended, unless fn returns an error or panics: then
	// nothing of it is stored, entries included (a panic is re-raised after
	// the rollback). Reads on tx see its own writes and, for a decision,
	// the same locks as the change (see the adapters' docs).
	//
	// A method that fails inside fn may have done part of its work, so fn
	// returns its error (or another) rather than commit. tx is valid only
	// until fn returns, and fn uses tx, never the Store: on SQLite the
	// Store's writer is the connection fn is running on (a write through it
	// waits for fn forever, or until ctx ends), and on PostgreSQL it would
	// run outside the transaction, behind its locks.
	//
	// When the commit succeeds, each appended entry's Seq (and a zero At)
	// is written back into the caller's LogEntry; on any error they are
	// left as they were.
	//
	// fn may run more than once: when the database aborts the transaction
	// to break a deadlock or a serialization conflict (PostgreSQL), Update
	// rolls it back, drops the entries that attempt appended and runs fn
	// again on a new transaction, a bounded number of times. So fn must
	// have no effect outside tx before Update returns (no event published,
	// no channel signalled, no counter moved), must append its entries on
	// every run, and decides from what it reads on tx in this run.
	Update(ctx context.Context, fn func(tx Tx) error) error

	// Read runs fn on one consistent snapshot of the database, read only,
	// and takes no lock that a writer waits for. Every read in fn, LogHead
	// included, sees the same state: the log head P and the data exactly as
	// the units of work that appended the entries 1..P committed it, and
	// nothing of a unit with an entry above P. (A unit that appended nothing
	// has no place in the log: its changes are in the snapshot or not, as
	// they committed before or after it.) That is what a subscription
	// anchors on: its memberships and the position P read together, so
	// that the entries after P are exactly the changes it has not seen.
	//
	// Writes through tx fail with an internal error (on PostgreSQL the
	// failed statement also ends the snapshot: fn returns the error). As
	// with Update, tx is valid only until fn returns and fn uses tx, never
	// the Store: on SQLite's ":memory:" the snapshot holds the only
	// connection. Read returns fn's error.
	Read(ctx context.Context, fn func(tx ReadTx) error) error

	// Ping checks the database is reachable (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// Tx is one unit of work: every data method, run inside the transaction,
// and Append.
type Tx interface {
	Queries
	// Append adds entries to the log, in order, when the transaction
	// commits (nil ones are skipped). The pointers are kept until then: the
	// commit writes the assigned Seq (and At, when zero) into them.
	Append(entries ...*LogEntry)
}

// ReadTx is one consistent read snapshot (Store.Read): the data methods,
// whose writes fail, and the log head of the same snapshot.
type ReadTx interface {
	Queries
	// LogHead is the head of the log as of the snapshot: every entry up to
	// it, and no later one, has its unit's changes in the snapshot.
	LogHead(ctx context.Context) (int64, error)
}

// NewID returns prefix + "_" + 16 random base32 characters (80 bits).
func NewID(prefix string) string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("store: crypto/rand failed: " + err.Error())
	}
	return prefix + "_" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

// Now is the store's notion of the current time: UTC, microseconds.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
