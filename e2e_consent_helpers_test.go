package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
)

// Helpers of the consent tests (e2e_consent_test.go).

// teamProbe watches a team's membership events on the server's hub as one
// user, the way a teamUpdates subscription does: it ends with FORBIDDEN
// when that user leaves the team.
type teamProbe struct {
	t      *testing.T
	events chan *realtime.Event
	end    chan error
}

func (p *teamProbe) Deliver(pl *realtime.Payload) {
	select {
	case p.events <- pl.Event:
	default:
		p.t.Errorf("team probe: more than %d events", cap(p.events))
	}
}

func (p *teamProbe) End(err error) { p.end <- err }

// typeEncoder renders an event as its type; the probe reads the event.
type typeEncoder struct{}

func (typeEncoder) Encode(ev *realtime.Event) ([]byte, error) { return []byte(ev.Type), nil }

// watchTeam subscribes a probe as user to the team's room, anchored in the
// event log as the subscription resolvers do.
func (e *env) watchTeam(user, team string) *teamProbe {
	p := &teamProbe{t: e.t, events: make(chan *realtime.Event, 16), end: make(chan error, 1)}
	head, err := e.m.store.LogHead(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	sub := e.m.hub.Subscribe(realtime.SubscribeOptions{
		UserID: user, Rooms: []string{realtime.RoomTeam(team)}, After: uint64(head),
		EndOnLeave: true, Encoder: typeEncoder{}, Sink: p,
		// Membership only: presence is live news, delivered whenever its
		// relay gets to it (after the anchor or not), not what these
		// tests watch.
		Accept: func(ev *realtime.Event) bool { return !service.IsPresenceEvent(ev.Type) },
	})
	e.t.Cleanup(sub.Unsubscribe)
	return p
}

// next waits for the probe's next event and returns its type and member.
// The hub delivers before it ends a subscription, so an event queued
// before the end is returned first.
func (p *teamProbe) next() (typ, member string) {
	p.t.Helper()
	var ev *realtime.Event
	select {
	case ev = <-p.events:
	case err := <-p.end:
		select {
		case ev = <-p.events:
			p.end <- err
		default:
			p.t.Fatalf("team probe ended (%v), want an event", err)
		}
	case <-time.After(5 * time.Second):
		p.t.Fatal("no team event within 5 s")
	}
	d, err := ev.Decoded(service.DecodeEventData)
	if err != nil {
		p.t.Fatalf("team event %s: %v", ev.Data, err)
	}
	// What a recipient sees of the member: the event's snapshot (EventData.Member
	// is the builder's, not published).
	if snap := d.(*service.EventData).Snapshot; snap != nil && snap.Member != nil {
		member = snap.Member.ID
	}
	return ev.Type, member
}

// nothing asserts no team event arrives within quiet.
func (p *teamProbe) nothing() {
	p.t.Helper()
	select {
	case ev := <-p.events:
		p.t.Fatalf("team probe got %s, want nothing", ev.Type)
	case <-time.After(quiet):
	}
}

// ended waits for the probe to end and returns its error.
func (p *teamProbe) ended() error {
	p.t.Helper()
	select {
	case err := <-p.end:
		return err
	case <-time.After(5 * time.Second):
		p.t.Fatal("team probe did not end within 5 s")
		return nil
	}
}

// notification is the part of a notifications event the tests read.
type notification struct {
	Type         string
	Notification struct{ Message, SenderID string }
}

const notificationsQuery = `subscription { notifications { type notification { message senderId } } }`

func (l *live) nextNotification() notification {
	l.t.Helper()
	var d struct{ Notifications notification }
	l.nextData("a notification", &d)
	return d.Notifications
}

// ids reads a list of {id} objects at key of a query's data.
func (e *env) ids(user, query string, vars map[string]any, key string) []string {
	e.t.Helper()
	var out map[string][]struct{ ID, TeamID string }
	e.do(user, query, vars, &out)
	ids := []string{}
	for _, x := range out[key] {
		ids = append(ids, x.ID+x.TeamID)
	}
	return ids
}

func wantIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

const teamMembersQuery = `query($t: ID!) { team(id: $t) { id members { id } } }`

func (e *env) teamMembers(user, team string) []string {
	e.t.Helper()
	var out struct {
		Team struct{ Members []struct{ ID string } }
	}
	e.do(user, teamMembersQuery, map[string]any{"t": team}, &out)
	ids := []string{}
	for _, m := range out.Team.Members {
		ids = append(ids, m.ID)
	}
	return ids
}
