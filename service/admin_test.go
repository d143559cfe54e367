package service_test

import (
	"context"
	"testing"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
)

// TestUpdateUserPublishesRightsControls: disabling and demoting publish one
// event that reaches no one and carries only its control (the user id, and
// for disabling the close code); other changes publish nothing. The
// revocation instants are stored with the change.
func TestUpdateUserPublishesRightsControls(t *testing.T) {
	f := newFixture(t)
	admin := auth.WithViewer(context.Background(), auth.Viewer{UserID: "carol", Admin: true})
	yes, no, name := true, false, "Bobby"
	cases := []struct {
		name string
		ch   service.UserChange
		want *realtime.Control
	}{
		{"rename", service.UserChange{Name: &name}, nil},
		{"promote", service.UserChange{Admin: &yes}, nil},
		{"demote", service.UserChange{Admin: &no}, &realtime.Control{Op: realtime.Demote, UserID: "bob"}},
		{"disable", service.UserChange{Disabled: &yes}, &realtime.Control{Op: realtime.Disconnect, UserID: "bob", Code: 4403, Reason: "Forbidden: user disabled"}},
		{"enable", service.UserChange{Disabled: &no}, nil},
		{"disable and demote", service.UserChange{Disabled: &yes, Admin: &no}, &realtime.Control{Op: realtime.Disconnect, UserID: "bob", Code: 4403, Reason: "Forbidden: user disabled"}},
	}
	for _, tc := range cases {
		if _, err := f.svc.UpdateUser(admin, "bob", tc.ch); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		evs := f.take()
		if tc.want == nil {
			if len(evs) != 0 {
				t.Errorf("%s: published %d events, want none", tc.name, len(evs))
			}
			continue
		}
		if len(evs) != 1 {
			t.Fatalf("%s: published %d events, want 1", tc.name, len(evs))
		}
		ev := evs[0]
		if ev.Type != service.UserRightsChanged || len(ev.Rooms) != 0 || string(ev.Data) != "{}" || ev.Control == nil || *ev.Control != *tc.want {
			t.Errorf("%s: event %s rooms %v data %s control %+v, want control %+v and nothing else", tc.name, ev.Type, ev.Rooms, ev.Data, ev.Control, tc.want)
		}
	}
	u, err := f.st.User(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !u.Disabled || u.Admin || u.Name != "Bobby" || u.SessionsRevokedAt.IsZero() || u.AdminRevokedAt.IsZero() {
		t.Errorf("stored: %+v", u)
	}

	if _, err := f.svc.UpdateUser(as("alice"), "bob", service.UserChange{Name: &name}); errs.CodeOf(err) != errs.Forbidden {
		t.Errorf("non-admin: %v, want FORBIDDEN", err)
	}
	if _, err := f.svc.UpdateUser(admin, "nobody", service.UserChange{Name: &name}); errs.CodeOf(err) != errs.NotFound {
		t.Errorf("unknown user: %v, want NOT_FOUND", err)
	}
	if len(f.take()) != 0 {
		t.Error("a refused change published")
	}
}
