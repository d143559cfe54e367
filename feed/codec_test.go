package feed

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/taskpulse/taskpulse/store"
)

// A log entry crosses the stream byte for byte: an instance reading it
// from the stream sees what one reading the database sees.
func TestEntryRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	for name, data := range map[string][]byte{
		"JSON with spaces":   []byte(`{"b": 1,  "a":[2], "s":"<&>\u00e9"}`),
		"leading space":      []byte(` {"a":1}`),
		"trailing newline":   []byte("{\"a\":1}\n"),
		"null":               []byte(`null`),
		"not JSON":           []byte(`{"a":`),
		"binary":             {0, 1, 2, 0xff},
		"empty":              nil,
		"string":             []byte(`"x"`),
		"number":             []byte(`12.50`),
		"nested with escape": []byte(`{"a":"\"}"}`),
	} {
		e := store.LogEntry{Seq: 42, Type: "TASK_UPDATED", Rooms: []string{"project:p", "user:u"}, Data: data,
			Control: []byte(`{"op":1, "userId":"u","room":"project:p"}`), At: at}
		b := encodeEntry(e)
		got, err := decodeEntry("0-42", string(b))
		if err != nil {
			t.Fatalf("%s: decode %s: %v", name, b, err)
		}
		if got.Seq != 42 || got.Type != e.Type || !slices.Equal(got.Rooms, e.Rooms) || !bytes.Equal(got.Data, e.Data) ||
			!bytes.Equal(got.Control, e.Control) || !got.At.Equal(at) || got.At.Location() != time.UTC {
			t.Errorf("%s: %s\n got  %+v\n want %+v", name, b, got, e)
		}
	}
}

func TestEntryDecodeRefuses(t *testing.T) {
	for id, v := range map[string]any{
		"0-x":  `{"t":"T"}`,
		"1-5":  `{"t":"T"}`,
		"0-0":  `{"t":"T"}`,
		"0-5":  nil,
		"0-6":  `{"r":["a"]}`,
		"0-7":  `{"t":`,
		"0-8":  `{"t":"T","d":1,"a":"x"}`,
		"0--1": `{"t":"T"}`,
	} {
		if e, err := decodeEntry(id, v); err == nil {
			t.Errorf("decodeEntry(%q, %v) = %+v, want an error", id, v, e)
		}
	}
}

func TestKeyBase(t *testing.T) {
	for prefix, want := range map[string]string{
		"taskpulse":    "{taskpulse}:",
		"tptest:{ab}:": "tptest:{ab}:",
		"odd{":         "{odd{}:",
		"empty{}tag":   "{empty{}tag}:",
		"a:{b}c":       "a:{b}c",
	} {
		if got := keyBase(prefix); got != want {
			t.Errorf("keyBase(%q) = %q, want %q", prefix, got, want)
		}
	}
}

func TestBackoffGrowsJitteredAndCapped(t *testing.T) {
	var b backoff
	for i := range 12 {
		d := b.failed()
		ceil := min(backoffCap, backoffBase<<i)
		if d < ceil/2 || d > ceil {
			t.Fatalf("retry %d waits %v, want within [%v, %v]", i, d, ceil/2, ceil)
		}
		if _, wait := b.waiting(); !wait {
			t.Fatalf("retry %d: not waiting right after a failure", i)
		}
	}
	b.reset()
	if _, wait := b.waiting(); wait {
		t.Fatal("waiting after reset")
	}
}
