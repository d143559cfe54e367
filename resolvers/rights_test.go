package resolvers

import (
	"context"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/sqlite"
)

type nopSink struct{}

func (nopSink) Deliver(*realtime.Payload) {}
func (nopSink) End(error)                 {}

type nopEncoder struct{}

func (nopEncoder) Encode(*realtime.Event) ([]byte, error) { return []byte("{}"), nil }

// TestPrivilegedSubscribeRechecksAdmin: an operation's rights are computed
// when it begins; a demotion committed before its subscription takes its
// place in the log is not followed by a Demote the subscription would see,
// so a subscription that only admin rights allow checks them again there.
func TestPrivilegedSubscribeRechecksAdmin(t *testing.T) {
	bg := context.Background()
	st, err := sqlite.Open(bg, sqlite.MemoryDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hub := realtime.NewHub(realtime.HubOptions{})
	t.Cleanup(hub.Close)
	svc := service.New(st, nopFeed{}, nil)
	authn, err := auth.NewAuthenticator(auth.Options{Secret: []byte("k"), Users: st})
	if err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Svc: svc, Subs: service.NewSubscriptions(st, hub, service.SubscriptionOptions{Rights: authn.Current}), Registry: realtime.NewRegistry(), Auth: authn}
	for _, u := range []store.User{{ID: "alice", Name: "A"}, {ID: "ops", Name: "O", Admin: true}, {ID: "root", Name: "R", Admin: true}} {
		if _, err := svc.CreateUser(bg, u); err != nil {
			t.Fatal(err)
		}
	}
	p, err := svc.CreateProject(auth.WithViewer(bg, auth.Viewer{UserID: "alice"}), "P", "")
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := authn.Issue("ops", time.Hour, "")
	stale, err := authn.Verify(bg, tok) // the operation began: ops is an admin
	if err != nil || !stale.Admin {
		t.Fatalf("verify: %+v %v", stale, err)
	}
	subscribe := func() error {
		target := &realtime.Target{Sink: nopSink{}, Encoder: nopEncoder{}}
		ctx := realtime.WithTarget(auth.WithViewer(bg, stale), target)
		_, err := r.projectUpdates(ctx, p.ID, nil)
		if s := target.Subscription(); s != nil {
			s.Unsubscribe()
		}
		return err
	}
	if err := subscribe(); err != nil {
		t.Fatalf("admin, not a member: %v", err)
	}
	if _, err := svc.UpdateUser(auth.WithViewer(bg, auth.Viewer{UserID: "root", Admin: true}), "ops", service.UserChange{Admin: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if err := subscribe(); errs.CodeOf(err) != errs.Forbidden {
		t.Fatalf("subscribe with rights read before a demotion: %v, want FORBIDDEN", err)
	}
}
