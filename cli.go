package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/config"
	"github.com/taskpulse/taskpulse/store"
)

const usage = `usage:
  taskpulse [serve] [--demo]          serve the API (--demo seeds demo data into an empty store)
  taskpulse user add <id> --name "<name>" [--email <e>] [--admin]
  taskpulse user update <id> [--name <n>] [--email <e>] [--admin=true|false] [--disabled=true|false]
  taskpulse token <userID> [--ttl 1h] [--role admin|service]
Configuration comes from the environment; see README.md.
`

// run is the whole command line: it returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "taskpulse: configuration:\n%v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	cmd, rest := "serve", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, rest = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		err = serve(ctx, cfg, log, rest, stdout)
	case "user":
		err = userCmd(ctx, cfg, log, rest, stdout)
	case "token":
		err = tokenCmd(ctx, cfg, log, rest, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = usageError("unknown command %q", cmd)
	}
	var ue *usageErr
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "taskpulse: %v\n%s", err, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "taskpulse: %v\n", err)
		return 1
	}
}

type usageErr struct{ msg string }

func (e *usageErr) Error() string { return e.msg }

func usageError(format string, args ...any) error {
	return &usageErr{msg: fmt.Sprintf(format, args...)}
}

// parse parses flags that may come before or after positional arguments
// (`token alice --ttl 2h` and `token --ttl 2h alice` both work).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// serve runs the server until ctx ends (SIGINT/SIGTERM), then drains.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	demo := fs.Bool("demo", false, "seed demo data when the store is empty")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("serve takes no arguments, got %q", pos)
	}
	useRedisLogger(cfg, log)
	m, err := Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	// The first stdout line: scripts and tests read the address from it.
	fmt.Fprintf(stdout, "taskpulse listening on %s\n", m.URL())
	log.Info("serving", "addr", m.ln.Addr().String(), "database", cfg.DatabaseKind, "broker", brokerKind(cfg), "instance", m.instance)
	if *demo {
		if err := seedDemo(ctx, m, log, stdout); err != nil {
			log.Error("demo seed failed", "err", err)
		}
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down", "drain", cfg.DrainTimeout)
	case err := <-m.served:
		m.served <- err // Close reads it again
		log.Error("listener failed", "err", err)
	}
	if err := m.Close(context.Background()); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// userCmd: taskpulse user add|update …
func userCmd(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "update" {
		return userUpdateCmd(ctx, cfg, log, args[1:], stdout)
	}
	if len(args) == 0 || args[0] != "add" {
		return usageError("usage: taskpulse user add <id> --name \"<name>\" [--email <e>] [--admin]\n       taskpulse user update <id> [--name <n>] [--email <e>] [--admin=true|false] [--disabled=true|false]")
	}
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	name := fs.String("name", "", "display name (required)")
	email := fs.String("email", "", "email address")
	admin := fs.Bool("admin", false, "make the user an administrator")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("user add needs exactly one <id>")
	}
	if *name == "" {
		return usageError("user add needs --name")
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := newCLIService(st, log)
	u, err := svc.CreateUser(ctx, store.User{ID: pos[0], Name: *name, Email: *email, Admin: *admin})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created user %s (%s)\n", u.ID, u.Name)
	return nil
}

// tokenCmd prints a signed JWT for a user, alone on stdout.
func tokenCmd(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	role := fs.String("role", "", `"admin" or "service" (optional)`)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("token needs exactly one <userID>")
	}
	if *ttl <= 0 {
		return usageError("--ttl must be positive")
	}
	if *role != "" && *role != "admin" && *role != "service" {
		return usageError(`--role must be "admin" or "service"`)
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.User(ctx, pos[0])
	if err != nil {
		return err // a token for an unknown user would be refused anyway
	}
	if u.Disabled {
		return fmt.Errorf("user %s is disabled: a token would be refused (enable it with taskpulse user update %s --disabled=false)", u.ID, u.ID)
	}
	authn, err := newAuthenticator(ctx, cfg, st, log, nil)
	if err != nil {
		return err
	}
	// A token issued within the second of the user's last revocation would
	// be revoked at birth (iat has whole seconds).
	if wait := time.Until(auth.FirstValidIssue(u, time.Now())); wait > 0 {
		time.Sleep(wait)
	}
	tok, err := authn.Issue(pos[0], *ttl, *role)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
