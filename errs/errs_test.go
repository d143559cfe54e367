package errs

import (
	"errors"
	"fmt"
	"testing"
)

func TestCodeOf(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want Code
	}{
		{"coded", E(Forbidden, "no"), Forbidden},
		{"wrapped", fmt.Errorf("loading: %w", E(NotFound, "task %q", "t1")), NotFound},
		{"joined keeps the first coded", errors.Join(errors.New("plain"), E(BadUserInput, "x")), BadUserInput},
		{"uncoded is internal", errors.New("disk on fire"), Internal},
		{"nil is internal", nil, Internal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := CodeOf(c.err); got != c.want {
				t.Fatalf("CodeOf(%v) = %s, want %s", c.err, got, c.want)
			}
		})
	}
	if Is(nil, Internal) {
		t.Fatal("Is(nil, Internal) must be false: no error has no code")
	}
	if e := E(NotFound, "task %q not found", "t1"); e.Error() != `NOT_FOUND: task "t1" not found` {
		t.Fatalf("message %q", e.Error())
	}
}
