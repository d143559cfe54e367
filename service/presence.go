package service

import (
	"context"
	"errors"

	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// MaxPageLen bounds updatePresence's currentPage.
const MaxPageLen = 500

// UsePresence gives the service every user's presence: what updatePresence
// changes, what the presence queries read, and what events show of users'
// online state (a user is online while not OFFLINE: from their first
// connection until PRESENCE_OFFLINE_GRACE after their last). Call it
// before the service is used.
func (s *Service) UsePresence(p presence.Presence) {
	s.presence = p
	s.online = func(userID string) bool {
		sts, err := p.Get(context.Background(), userID)
		return err == nil && len(sts) == 1 && sts[0].Status != presence.Offline
	}
}

// presenceOf is userID's presence now; nil without a presence source.
func (s *Service) presenceOf(ctx context.Context, userID string) *presence.State {
	if s.presence == nil {
		return nil
	}
	sts, err := s.presence.Get(ctx, userID)
	if err != nil || len(sts) != 1 {
		s.log.Warn("presence unavailable", "user", userID, "err", err)
		return nil
	}
	return &sts[0]
}

// PublishPresence publishes a presence change of one user (a
// presence.Relay's handler). Presence goes only to users who share a team
// or a project with that user, and to the user: one event addressed to
// their own room and the rooms of all their teams and projects, which
// userActivity subscriptions listen to (each subscriber's rooms are their
// own memberships, followed live, so the event reaches the users who share
// one with the user when their hub receives it); and one event per team,
// addressed to that team's room and carrying the team, for teamUpdates (an
// event renders the same bytes for every recipient, so a team it shows
// must be its own).
//
// The events are ephemeral: live news, not history, so they never enter
// the log (Feed.PublishLive) and take no place in its order. They carry
// the state as at the change, and the team's members as read here;
// rendering them reads nothing.
func (s *Service) PublishPresence(ctx context.Context, ch presence.Change) error {
	typ := ch.Kind.EventType()
	if typ == "" {
		return errs.E(errs.Internal, "unknown presence change %d", ch.Kind)
	}
	st := ch.State
	teams, projects, err := memberships(ctx, s.store, st.UserID)
	if err != nil {
		return err
	}
	rooms := append([]string{realtime.RoomUser(st.UserID)}, membershipRooms(teams, projects)...)
	now := store.Now()
	evs := make([]*realtime.Event, 0, 1+len(teams))
	evs = append(evs, newEvent(typ, now, EventData{Presence: &st}, nil, rooms...))
	for _, t := range teams {
		evs = append(evs, newEvent(typ, now, EventData{Team: &t, Presence: &st}, nil, realtime.RoomTeam(t.ID)))
	}
	if err := s.seal(ctx, s.store, evs); err != nil {
		return err
	}
	for _, ev := range evs {
		ev.Ephemeral = true
		if err := s.feed.PublishLive(ctx, ev); err != nil {
			return err
		}
		if s.published != nil {
			s.published(ev.Type)
		}
	}
	return nil
}

// PresenceChange is updatePresence's input; nil fields stay as they are,
// "" clears one.
type PresenceChange struct {
	Status        *string
	CurrentPage   *string
	ActiveTask    *string
	ActiveProject *string
}

// UpdatePresence changes the caller's presence. Status is ONLINE or AWAY (a
// chosen AWAY stays until ONLINE is set; OFFLINE is what others see once
// the last connection has closed, so it cannot be set). activeTask must be
// a task the caller can read and activeProject a project they are a member
// of: others are shown only ids the caller could name. The caller must be
// present — connected, or within the grace after their last connection —
// else BAD_USER_INPUT. It is an operation like any mutation, so the
// per-user operation rate limit counts it; bursts of page changes reach
// other users coalesced (presence.Options.ActivityInterval).
func (s *Service) UpdatePresence(ctx context.Context, ch PresenceChange) (presence.State, error) {
	v, err := viewer(ctx)
	if err != nil {
		return presence.State{}, err
	}
	if s.presence == nil {
		return presence.State{}, errs.E(errs.Internal, "presence is not available")
	}
	var up presence.Update
	if ch.Status != nil {
		st := presence.Status(*ch.Status)
		if st != presence.Online && st != presence.Away {
			return presence.State{}, errs.E(errs.BadUserInput, "status must be ONLINE or AWAY: OFFLINE is shown once your last connection has closed")
		}
		up.Status = &st
	}
	if ch.CurrentPage != nil {
		page, err := text("currentPage", *ch.CurrentPage, false, MaxPageLen)
		if err != nil {
			return presence.State{}, err
		}
		up.CurrentPage = &page
	}
	if t := ch.ActiveTask; t != nil {
		if *t != "" {
			if err := id("activeTask", *t); err != nil {
				return presence.State{}, err
			}
			if _, _, err := readableTask(ctx, s.store, v, *t); err != nil {
				return presence.State{}, err
			}
		}
		up.ActiveTask = t
	}
	if p := ch.ActiveProject; p != nil {
		if *p != "" {
			if err := id("activeProject", *p); err != nil {
				return presence.State{}, err
			}
			if _, err := memberProject(ctx, s.store, v, *p); err != nil {
				return presence.State{}, err
			}
		}
		up.ActiveProject = p
	}
	st, err := s.presence.Update(ctx, v.UserID, up)
	switch {
	case errors.Is(err, presence.ErrOffline):
		return presence.State{}, errs.E(errs.BadUserInput, "you have no open connection: presence is shown while you are connected over WebSocket or SSE; connect, then update it")
	case err != nil:
		return presence.State{}, err
	}
	return st, nil
}

// TeamPresence is the presence of a team's members, ordered by user id:
// members only (admins: any team), as Team.
func (s *Service) TeamPresence(ctx context.Context, teamID string) ([]presence.State, error) {
	if _, err := s.Team(ctx, teamID); err != nil {
		return nil, err
	}
	us, err := s.store.TeamMembers(ctx, teamID)
	if err != nil {
		return nil, err
	}
	return s.presences(ctx, us)
}

// ProjectPresence is the presence of a project's members, ordered by user
// id: members only (admins: any project), as Project.
func (s *Service) ProjectPresence(ctx context.Context, projectID string) ([]presence.State, error) {
	if _, err := s.Project(ctx, projectID); err != nil {
		return nil, err
	}
	us, err := s.store.ProjectMembers(ctx, projectID)
	if err != nil {
		return nil, err
	}
	return s.presences(ctx, us)
}

func (s *Service) presences(ctx context.Context, us []store.User) ([]presence.State, error) {
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	if s.presence == nil {
		out := make([]presence.State, len(ids))
		for i, id := range ids {
			out[i] = presence.State{UserID: id, Status: presence.Offline}
		}
		return out, nil
	}
	return s.presence.Get(ctx, ids...)
}

// UserPresence is userID's presence if the caller may see it (themself,
// someone they share a team or project with; admins: anyone), else nil —
// for User.presence, whose parent the caller could already see.
func (s *Service) UserPresence(ctx context.Context, userID string) (*presence.State, error) {
	ok, err := s.observes(ctx, userID)
	if err != nil || !ok {
		return nil, err
	}
	return s.presenceOf(ctx, userID), nil
}

// Online reports whether userID is online, false for a user the caller may
// not see (User.online).
func (s *Service) Online(ctx context.Context, userID string) (bool, error) {
	ok, err := s.observes(ctx, userID)
	if err != nil || !ok {
		return false, err
	}
	st := s.presenceOf(ctx, userID)
	return st != nil && st.Status != presence.Offline, nil
}

// observes reports whether the caller may see userID's presence.
func (s *Service) observes(ctx context.Context, userID string) (bool, error) {
	v, err := viewer(ctx)
	if err != nil {
		return false, err
	}
	if v.UserID == userID || v.Admin {
		return true, nil
	}
	return s.store.SharesTeamOrProject(ctx, v.UserID, userID)
}
