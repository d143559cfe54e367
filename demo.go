package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
	"github.com/taskpulse/taskpulse/store"
)

// cliPublisher is the feed of the CLI's commands (user add), which change
// nothing live clients watch: a change's events, if it had any, would be in
// the database's log for the servers' feeds to find, and live news is
// refused.
type cliPublisher struct{}

func (cliPublisher) Committed() {}

func (cliPublisher) PublishLive(context.Context, *realtime.Event) error {
	return errors.New("the command line does not publish events")
}

func newCLIService(st store.Store, log *slog.Logger) *service.Service {
	return service.New(st, cliPublisher{}, log)
}

// demoTokenTTL is long enough for an afternoon of trying things.
const demoTokenTTL = 12 * time.Hour

// seedDemo fills an empty store with a small team (alice, bob, carol), a
// project with tasks, an outsider (dave, invited to the team but not in it)
// and an admin (ops), then logs the
// playground URL and ready tokens. A store that already has alice is left
// as it is; the link and tokens are printed on out either way.
func seedDemo(ctx context.Context, m *Main, log *slog.Logger, out io.Writer) error {
	svc := m.Service()
	_, err := m.store.User(ctx, "alice")
	switch {
	case errs.Is(err, errs.NotFound):
		if err := seedDemoData(ctx, svc); err != nil {
			return err
		}
		log.Info("demo data seeded", "users", "alice bob carol dave ops", "project", "Launch (alice, bob)", "team", "Core (alice, bob, carol; dave invited)")
	case err != nil:
		return err
	default:
		log.Info("demo: store already has data; not seeding")
	}
	alice, err := m.Authenticator().Issue("alice", demoTokenTTL, "")
	if err != nil {
		return err
	}
	bob, err := m.Authenticator().Issue("bob", demoTokenTTL, "")
	if err != nil {
		return err
	}
	base := m.URL()
	// Plain lines on stdout, so the link and tokens copy without quoting.
	fmt.Fprintf(out, "\nPlayground (as alice): %s/#token=%s\n", base, alice)
	fmt.Fprintf(out, "Token for alice: %s\n", alice)
	fmt.Fprintf(out, "Token for bob:   %s\n", bob)
	fmt.Fprintf(out, "More tokens: bin/taskpulse token <carol|dave|ops> (same DATABASE_URL)\n\n")
	log.Info("demo ready", "playground", base+"/", "tokens", "printed on stdout")
	return nil
}

func seedDemoData(ctx context.Context, svc *service.Service) error {
	users := []store.User{
		{ID: "alice", Name: "Alice Martin", Email: "alice@example.com"},
		{ID: "bob", Name: "Bob Chen", Email: "bob@example.com"},
		{ID: "carol", Name: "Carol Diaz"},
		{ID: "dave", Name: "Dave Outsider"},
		{ID: "ops", Name: "Ops Admin", Admin: true},
	}
	for _, u := range users {
		if _, err := svc.CreateUser(ctx, u); err != nil {
			return fmt.Errorf("demo user %s: %w", u.ID, err)
		}
	}
	as := func(id string) context.Context { return auth.WithViewer(ctx, auth.Viewer{UserID: id}) }
	alice := as("alice")
	team, err := svc.CreateTeam(alice, "Core")
	if err != nil {
		return err
	}
	// Joining a team is consented: alice invites, bob and carol accept.
	for _, id := range []string{"bob", "carol"} {
		if _, err := svc.AddTeamMember(alice, team.ID, id); err != nil {
			return err
		}
		if _, err := svc.AcceptInvitation(as(id), team.ID); err != nil {
			return err
		}
	}
	// dave is left with an invitation to try: `invitations` as dave.
	if _, err := svc.AddTeamMember(alice, team.ID, "dave"); err != nil {
		return err
	}
	p, err := svc.CreateProject(alice, "Launch", team.ID)
	if err != nil {
		return err
	}
	if _, err := svc.AddProjectMember(alice, p.ID, "bob"); err != nil {
		return err
	}
	tasks := []service.TaskInput{
		{Title: "Write the launch announcement", ProjectID: p.ID, AssignedTo: "bob"},
		{Title: "Check the dashboards", Description: "Latency and error rate after the deploy", ProjectID: p.ID, AssignedTo: "alice"},
		{Title: "Book the retro room"},
	}
	for _, t := range tasks {
		if _, err := svc.CreateTask(alice, t); err != nil {
			return err
		}
	}
	return nil
}
