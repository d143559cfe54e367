// Package service owns taskpulse's use cases: who may do what, the change in
// the store, and the events of the change. Each change is one unit of work
// (store.Store.Update): its authorization reads, the change, the snapshots
// its events show and the events' log entries commit together or not at
// all, so the log holds exactly the committed changes, in commit order, and
// a decision is never made on a state another change has moved since.
// Resolvers, the CLI and other entry points call it; it knows no GraphQL
// and no transport.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/taskpulse/taskpulse/auth"
	"github.com/taskpulse/taskpulse/errs"
	"github.com/taskpulse/taskpulse/internal/failpoint"
	"github.com/taskpulse/taskpulse/presence"
	"github.com/taskpulse/taskpulse/realtime"
	"github.com/taskpulse/taskpulse/store"
)

// Feed moves events to every instance's hub (package feed implements it).
// What a change publishes is in the log already when the feed hears of
// it: the feed only has to carry the log.
type Feed interface {
	// Committed says a unit of work appended to the log. It is a nudge
	// that never blocks: the log is the truth, and a feed that missed a
	// nudge finds the entries on its next read.
	Committed()
	// PublishLive delivers an ephemeral event (presence) to every
	// instance's hub without the log: live news, not history.
	PublishLive(ctx context.Context, ev *realtime.Event) error
}

// Limits on what clients send; every string a client controls is bounded.
const (
	MaxNameLen        = 100
	MaxTitleLen       = 200
	MaxDescriptionLen = 10_000
	MaxMessageLen     = 2_000
	MaxIDLen          = 128
)

// Service implements the use cases.
type Service struct {
	store store.Store
	feed  Feed
	log   *slog.Logger

	// online reports whether a user has a live connection, for the
	// snapshots of events (UsePresence, SetPresence); nil: nobody is.
	online func(userID string) bool
	// presence is every user's presence (UsePresence, presence.go); nil:
	// nobody's is known.
	presence presence.Presence
	// published is told the type of each event this instance publishes
	// (CountEvents); nil: nobody counts.
	published func(typ string)
}

// New returns a Service over st whose events feed carries.
func New(st store.Store, feed Feed, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: st, feed: feed, log: log}
}

// SetPresence tells the service who is online, for what events show of
// their users, without a presence.Presence (UsePresence sets both; tests
// use this). Call it before the service is used.
func (s *Service) SetPresence(online func(userID string) bool) { s.online = online }

// CountEvents makes fn hear the type of every event this instance
// publishes: each log event once its unit of work has committed, each
// ephemeral one once the feed took it (the events-published metric). Call
// it before the service is used.
func (s *Service) CountEvents(fn func(typ string)) { s.published = fn }

// update makes one change as one unit of work: change runs on tx (its
// authorization reads, then its writes) and returns the change's events;
// seal completes them with their snapshots, read on tx; their log entries
// are appended to tx. All of it commits together, or none of it: a refused
// or failed change appends nothing. Then the feed is nudged.
//
// store.Update may run fn more than once (it retries a transaction the
// database aborted), so change builds what it returns inside and has no
// effect outside tx; the variables it sets are those of its last run.
func (s *Service) update(ctx context.Context, change func(tx store.Tx) ([]*realtime.Event, error)) error {
	var types []string
	err := s.store.Update(ctx, func(tx store.Tx) error {
		types = types[:0]
		events, err := change(tx)
		if err != nil {
			return err
		}
		if err := s.seal(ctx, tx, events); err != nil {
			return err
		}
		for _, ev := range events {
			e, err := realtime.ToLogEntry(ev)
			if err != nil {
				// The service built ev: a bug, not the caller's input.
				return fmt.Errorf("event %s: %w", ev.Type, err)
			}
			tx.Append(e)
			types = append(types, ev.Type)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The crash test kills the process here: committed, not yet relayed.
	failpoint.Hit("after-commit")
	if len(types) > 0 {
		s.feed.Committed()
		if s.published != nil {
			for _, typ := range types {
				s.published(typ)
			}
		}
	}
	return nil
}

// viewer returns the authenticated caller or UNAUTHENTICATED.
func viewer(ctx context.Context) (auth.Viewer, error) { return auth.Require(ctx) }

// text validates a required or optional client string: trimmed, bounded,
// valid UTF-8.
func text(field, v string, required bool, max int) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case !utf8.ValidString(v):
		return "", errs.E(errs.BadUserInput, "%s is not valid UTF-8", field)
	case required && v == "":
		return "", errs.E(errs.BadUserInput, "%s must not be empty", field)
	case utf8.RuneCountInString(v) > max:
		return "", errs.E(errs.BadUserInput, "%s is longer than %d characters", field, max)
	}
	return v, nil
}

// id validates an id argument.
func id(field, v string) error {
	if v == "" || len(v) > MaxIDLen {
		return errs.E(errs.BadUserInput, "%s must be 1 to %d bytes", field, MaxIDLen)
	}
	return nil
}
