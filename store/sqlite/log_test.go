package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/storetest"
)

// Two stores on one file (two processes, as `taskpulse user add` beside a
// server) number the log in commit order too: BEGIN IMMEDIATE makes their
// units of work take turns on the file.
func TestLogOrderAcrossStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	storetest.LogOrder(t, openT(t, path), openT(t, path))
}

// The log, its head and the epoch are the database's: a reopen keeps them,
// a new file has its own epoch.
func TestLogSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "log.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	e := &store.LogEntry{Type: "t", Rooms: []string{"r"}, Data: []byte(`{}`)}
	if err := s.Update(ctx, func(tx store.Tx) error { tx.Append(e); return nil }); err != nil {
		t.Fatal(err)
	}
	epoch, err := s.LogEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, path)
	if got, err := s.LogEpoch(ctx); err != nil || got != epoch {
		t.Errorf("epoch after reopen: %q, %v; want %q", got, err, epoch)
	}
	if head, err := s.LogHead(ctx); err != nil || head != 1 {
		t.Errorf("head after reopen: %d, %v; want 1", head, err)
	}
	if got, err := s.ReadLog(ctx, 0, 10); err != nil || len(got) != 1 || got[0].Seq != 1 || got[0].Type != "t" {
		t.Errorf("log after reopen: %+v, %v", got, err)
	}
	other, err := openT(t, filepath.Join(t.TempDir(), "other.db")).LogEpoch(ctx)
	if err != nil || other == epoch {
		t.Errorf("epoch of a new database: %q, %v; want one other than %q", other, err, epoch)
	}
}
