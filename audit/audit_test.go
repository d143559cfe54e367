package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func TestLogWritesOneJSONLinePerRecord(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	l := New(&buf, func() time.Time { return at }, nil)
	l.Log(Record{Kind: Deny, UserID: "bob", Operation: "updateTask", Object: "task_1", Code: "FORBIDDEN", Reason: "not a member"})
	l.Log(Record{Kind: Disconnect, UserID: "bob", CloseCode: 4403})
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %d: %q", len(lines), buf.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"time": "2026-12-04T10:00:00Z", "kind": "deny", "userId": "bob", "operation": "updateTask", "object": "task_1", "code": "FORBIDDEN", "reason": "not a member"}
	if len(got) != len(want) {
		t.Fatalf("fields: got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if !strings.Contains(lines[1], `"closeCode":4403`) || strings.Contains(lines[1], "until") {
		t.Errorf("disconnect line: %s", lines[1])
	}
}

func TestNilLoggerDiscards(t *testing.T) {
	var l *Logger
	l.Log(Record{Kind: Connect}) // must not panic
}

func TestConcurrentRecordsNeverInterleave(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, nil, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				l.Log(Record{Kind: Subscribe, UserID: strings.Repeat("u", i+1), Operation: "taskUpdates"})
			}
		}()
	}
	wg.Wait()
	n := 0
	for line := range strings.SplitSeq(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %d is not a record: %q", n, line)
		}
		n++
	}
	if n != 1600 {
		t.Fatalf("got %d records, want 1600", n)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteFailureReportedOnce(t *testing.T) {
	var calls int
	l := New(failWriter{}, nil, func(error) { calls++ })
	l.Log(Record{Kind: Connect})
	l.Log(Record{Kind: Connect})
	if calls != 1 {
		t.Fatalf("onError called %d times, want 1", calls)
	}
}

func TestOpenFileAppendsWithPrivateMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for range 2 {
		l, closeFn, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		l.Log(Record{Kind: Block, IP: "203.0.113.9", Until: time.Unix(1e9, 0)})
		if err := closeFn(); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Fatalf("want 2 appended lines, got %d", n)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if _, _, err := Open(filepath.Join(path, "nope", "x"), nil); err == nil {
		t.Fatal("want an error for an unopenable path")
	}
}

// Fields a client chooses are bounded, cut on a rune boundary, and JSON
// escaping keeps a newline a client sends inside its line.
func TestClientChosenFieldsAreBounded(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, nil, nil)
	l.Log(Record{Kind: Connect, UserAgent: strings.Repeat("é", MaxUserAgent), Object: strings.Repeat("x", 1000) + "\n{\"kind\":\"forged\"}"})
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("%d lines: %q", n, buf.String())
	}
	var r Record
	if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.UserAgent) > MaxUserAgent || !utf8.ValidString(r.UserAgent) || len(r.UserAgent) < MaxUserAgent-1 {
		t.Fatalf("user agent: %d bytes, valid %v", len(r.UserAgent), utf8.ValidString(r.UserAgent))
	}
	if r.Object != strings.Repeat("x", MaxID) {
		t.Fatalf("object: %q", r.Object)
	}
}
