package postgres

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/taskpulse/taskpulse/internal/pgtest"
	"github.com/taskpulse/taskpulse/store"
	"github.com/taskpulse/taskpulse/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// openT opens a store on url and closes it when t ends.
func openT(t testing.TB, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newStore opens a store on a database of its own.
func newStore(t testing.TB) *Store { return openT(t, pgtest.NewDatabase(t)) }

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
}
