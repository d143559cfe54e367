package migrations

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadOrdersByVersion(t *testing.T) {
	f := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	ms, err := Load(fstest.MapFS{
		"migrations/0002_b.sql": f("B"), "migrations/0001_a.sql": f("A"), "migrations/README": f("not a migration"),
	}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0] != (Migration{1, "0001_a.sql", "A"}) || ms[1] != (Migration{2, "0002_b.sql", "B"}) {
		t.Fatalf("got %+v", ms)
	}
}

func TestLoadRejectsBadSets(t *testing.T) {
	f := &fstest.MapFile{Data: []byte(`SELECT 1;`)}
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"gap", fstest.MapFS{"migrations/0001_a.sql": f, "migrations/0003_c.sql": f}, "expected version 2"},
		{"duplicate", fstest.MapFS{"migrations/0001_a.sql": f, "migrations/0001_b.sql": f}, "expected version 2"},
		{"not numbered", fstest.MapFS{"migrations/init.sql": f}, "NNNN_description.sql"},
		{"zero", fstest.MapFS{"migrations/0000_a.sql": f}, "NNNN_description.sql"},
		{"not starting at 1", fstest.MapFS{"migrations/0002_a.sql": f}, "expected version 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.fsys, "test")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load: got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
