package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/config"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/service"
)

// userUpdateCmd: taskpulse user update <id> [--name <n>] [--email <e>]
// [--admin=true|false] [--disabled=true|false]. It applies the same rules
// as the updateUser mutation, on the database. A running server reads the
// user on every request and every operation of an open socket, so it
// refuses a disabled user (and stops a demoted admin's admin operations)
// at once, and the change's event, in the database's log, reaches every
// running server's feed within its poll: they close the user's sockets and
// end their admin-granted subscriptions.
func userUpdateCmd(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("user update", flag.ContinueOnError)
	name := fs.String("name", "", "new display name")
	email := fs.String("email", "", `new email address ("" removes it)`)
	admin := fs.Bool("admin", false, "grant (true) or revoke (false) administrator rights")
	disabled := fs.Bool("disabled", false, "disable (true) or enable (false) the user")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("user update needs exactly one <id>")
	}
	var ch service.UserChange
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "name":
			ch.Name = name
		case "email":
			ch.Email = email
		case "admin":
			ch.Admin = admin
		case "disabled":
			ch.Disabled = disabled
		}
	})
	if ch == (service.UserChange{}) {
		return usageError("user update needs at least one of --name, --email, --admin, --disabled")
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := service.New(st, offlinePublisher{}, log)
	// Whoever can open the database is its operator: an admin.
	u, err := svc.UpdateUser(auth.WithViewer(ctx, auth.Viewer{UserID: "taskpulse-cli", Admin: true}), pos[0], ch)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "updated user %s (%s): admin=%v disabled=%v\n", u.ID, u.Name, u.Admin, u.Disabled)
	return nil
}

// offlinePublisher is the feed of a change made from the command line:
// this process has no subscribers to nudge or to tell live news. The
// change's events are in the database's log all the same, and the running
// servers' feeds find them there (within their poll).
type offlinePublisher struct{}

func (offlinePublisher) Committed()                                         {}
func (offlinePublisher) PublishLive(context.Context, *realtime.Event) error { return nil }
