package realtime

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/taskpulse/taskpulse/errs"
)

// Position is a place in the event log; its text form is the opaque cursor a
// client sends back as `after` to resume.
//
// Epoch names one history of the log: the database's (store.LogEpoch), new
// with a new database, so a cursor from a lost history is recognisably so
// (CURSOR_EXPIRED) rather than silently pointing into a different
// sequence. Seq is the event's place in
// its epoch, counting from 1; Seq 0 is the position before the first event.
//
// An epoch is 1..64 characters of [A-Za-z0-9._-] (the store generates them);
// only positions with such an epoch survive a round trip through Cursor.
type Position struct {
	Epoch string
	Seq   uint64
}

// Cursor text form: base64url (no padding) of "v1:<epoch>:<seq>". The version
// prefix lets a later format (a Redis stream id, say) coexist with this one.
const (
	cursorVersion = "v1:"
	// maxEpochLen bounds an epoch so a cursor stays short; the database's
	// (store.LogEpoch) is far shorter.
	maxEpochLen = 64
	// maxCursorLen bounds what ParseCursor looks at: the longest valid cursor
	// is base64 of "v1:" + 64 + ":" + 20 digits = 88 bytes → 118 characters.
	maxCursorLen = 128
)

var cursorEncoding = base64.RawURLEncoding.Strict()

// Cursor returns the opaque text form of p: URL-safe, versioned, and
// canonical (ParseCursor(p.Cursor()) == p). The zero Position has the empty
// cursor, which ParseCursor rejects.
func (p Position) Cursor() string {
	if p == (Position{}) {
		return ""
	}
	var buf [maxCursorLen]byte
	raw := append(buf[:0], cursorVersion...)
	raw = append(raw, p.Epoch...)
	raw = append(raw, ':')
	raw = strconv.AppendUint(raw, p.Seq, 10)
	return cursorEncoding.EncodeToString(raw)
}

// String is the cursor, so positions read well in logs.
func (p Position) String() string { return p.Cursor() }

// ParseCursor parses a cursor made by Position.Cursor. Anything else (too
// long, not base64url, unknown version, bad epoch or sequence) is a
// *errs.Error with code BAD_USER_INPUT; the message never echoes the input.
func ParseCursor(s string) (Position, error) {
	bad := func() (Position, error) {
		return Position{}, errs.E(errs.BadUserInput, "invalid cursor: pass a cursor received from an event, or omit it")
	}
	if s == "" || len(s) > maxCursorLen {
		return bad()
	}
	// The decoder skips '\r' and '\n'; reject them (and anything outside the
	// alphabet) up front so only the canonical spelling parses.
	for i := 0; i < len(s); i++ {
		if !isBase64URL(s[i]) {
			return bad()
		}
	}
	var buf [maxCursorLen]byte
	n, err := cursorEncoding.Decode(buf[:], []byte(s))
	if err != nil {
		return bad()
	}
	raw := string(buf[:n])
	rest, ok := strings.CutPrefix(raw, cursorVersion)
	if !ok {
		return bad()
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return bad()
	}
	epoch, digits := rest[:i], rest[i+1:]
	if !validEpoch(epoch) || !canonicalUint(digits) {
		return bad()
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return bad()
	}
	return Position{Epoch: epoch, Seq: seq}, nil
}

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// validEpoch reports whether e is 1..maxEpochLen characters of
// [A-Za-z0-9._-]: what brokers generate, and nothing a cursor's ':' or a
// log line could be confused by.
func validEpoch(e string) bool {
	if e == "" || len(e) > maxEpochLen {
		return false
	}
	for i := 0; i < len(e); i++ {
		if c := e[i]; !isBase64URL(c) && c != '.' {
			return false
		}
	}
	return true
}

// canonicalUint reports whether d is a decimal number without sign or
// leading zeros, so every position has exactly one cursor.
func canonicalUint(d string) bool {
	if d == "" || len(d) > 1 && d[0] == '0' {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}
