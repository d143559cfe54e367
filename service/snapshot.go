package service

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// seal completes the events of one change with their snapshots and encodes
// each one's Data, once. It reads on q, the change's unit of work, right
// after the change, so what it reads is the state the change commits: the
// members of a project after a member was added or removed, before any
// later change. A project's or team's members are read once per change
// however many of its events there are (deleting a project publishes one
// per task).
func (s *Service) seal(ctx context.Context, q store.Queries, events []*realtime.Event) error {
	members := map[string][]EventUser{}
	list := func(key string, read func() ([]store.User, error)) ([]EventUser, error) {
		if m, ok := members[key]; ok {
			return m, nil
		}
		us, err := read()
		if err != nil {
			return nil, err
		}
		m := s.eventUsers(us)
		members[key] = m
		return m, nil
	}
	for _, ev := range events {
		if ev.Data != nil {
			continue // built elsewhere, already encoded
		}
		v, err := ev.Decoded(DecodeEventData)
		d, ok := v.(*EventData)
		if err != nil || !ok {
			return fmt.Errorf("event %s was not built by newEvent", ev.Type)
		}
		var snap Snapshot
		if d.Snapshot != nil {
			snap = *d.Snapshot // a builder's part; events may share it
		}
		if d.Member != nil && snap.Member == nil {
			u := s.eventUser(*d.Member)
			snap.Member = &u
		}
		if d.Team != nil && d.Member != nil && d.Presence == nil {
			d.Presence = s.presenceOf(ctx, d.Member.ID) // teamUpdates shows the member's presence
		}
		if p := d.Project; p != nil && snap.ProjectMembers == nil {
			if snap.ProjectMembers, err = list("project:"+p.ID, func() ([]store.User, error) { return q.ProjectMembers(ctx, p.ID) }); err != nil {
				return fmt.Errorf("members of project %s: %w", p.ID, err)
			}
		}
		if t := d.Team; t != nil && snap.TeamMembers == nil {
			if snap.TeamMembers, err = list("team:"+t.ID, func() ([]store.User, error) { return q.TeamMembers(ctx, t.ID) }); err != nil {
				return fmt.Errorf("members of team %s: %w", t.ID, err)
			}
		}
		if snap.Member != nil || snap.ProjectMembers != nil || snap.TeamMembers != nil {
			d.Snapshot = &snap
		}
		if ev.Data, err = json.Marshal(d); err != nil {
			// EventData holds only plain fields; failing here is a programming error.
			return fmt.Errorf("encoding event %s: %w", ev.Type, err)
		}
	}
	return nil
}

// eventUser is u as an event shows them now.
func (s *Service) eventUser(u store.User) EventUser {
	return EventUser{ID: u.ID, Name: u.Name, Email: u.Email, Online: s.online != nil && s.online(u.ID)}
}

// eventUsers is eventUser of each, never nil (an empty list is a list).
// With a presence source their online states are read in one call (one
// Redis round trip for a whole project, not one per member: this runs
// inside the change's transaction).
func (s *Service) eventUsers(us []store.User) []EventUser {
	out := make([]EventUser, len(us))
	online := s.onlineOf(us)
	for i, u := range us {
		out[i] = EventUser{ID: u.ID, Name: u.Name, Email: u.Email, Online: online(i, u.ID)}
	}
	return out
}

// onlineOf returns whether us[i] is online, read at once for all of them
// from the presence source when there is one.
func (s *Service) onlineOf(us []store.User) func(i int, id string) bool {
	if s.presence == nil || len(us) < 2 {
		return func(_ int, id string) bool { return s.online != nil && s.online(id) }
	}
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	sts, err := s.presence.Get(context.Background(), ids...)
	if err != nil || len(sts) != len(ids) {
		return func(int, string) bool { return false } // as online does when presence fails
	}
	return func(i int, _ string) bool { return sts[i].Status != presence.Offline }
}
