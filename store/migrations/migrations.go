// Package migrations owns what the store adapters share about their schema
// migrations: reading the numbered NNNN_description.sql files embedded in
// an adapter, in order and without gaps. Applying them is each adapter's
// own (its transactions and locks differ).
package migrations

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string // the file's name, e.g. 0002_invitations.sql
	SQL     string
}

// Load reads fsys's migrations/NNNN_description.sql files, ordered by
// version. Versions must run 1, 2, 3, … without gaps, so a missing file is
// caught at start-up rather than leaving a database between known
// versions. adapter prefixes errors ("sqlite", "postgres").
func Load(fsys fs.FS, adapter string) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	ms := make([]Migration, 0, len(names))
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("%s: migration %q: name must be NNNN_description.sql", adapter, base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("%s: migration %q: expected version %d", adapter, m.Name, i+1)
		}
	}
	return ms, nil
}
