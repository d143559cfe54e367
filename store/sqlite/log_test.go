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

// The log, its head and the epoch are the file's: a reopen keeps them, a
// new file has its own epoch.
func TestLogSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	storetest.LogSurvivesReopen(t,
		func() (store.Store, error) { return Open(t.Context(), path) },
		func(t *testing.T) store.Store { return openT(t, filepath.Join(t.TempDir(), "other.db")) })
}
