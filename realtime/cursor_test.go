package realtime

import (
	"encoding/base64"
	"math"
	"strings"
	"testing"

	"github.com/taskpulse/taskpulse/errs"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, p := range []Position{
		{Epoch: "0123456789abcdef", Seq: 1},
		{Epoch: "e", Seq: 0},
		{Epoch: "A-b_c.9", Seq: 42},
		{Epoch: strings.Repeat("x", maxEpochLen), Seq: math.MaxUint64},
	} {
		c := p.Cursor()
		if len(c) > maxCursorLen {
			t.Errorf("%+v: cursor %q is %d characters, over %d", p, c, len(c), maxCursorLen)
		}
		for _, r := range c {
			if !isBase64URL(byte(r)) {
				t.Errorf("%+v: cursor %q is not URL-safe", p, c)
			}
		}
		got, err := ParseCursor(c)
		if err != nil || got != p {
			t.Errorf("ParseCursor(%q) = %+v, %v; want %+v", c, got, err, p)
		}
	}
	if c := (Position{}).Cursor(); c != "" {
		t.Errorf("zero Position cursor = %q, want empty", c)
	}
}

func TestCursorIsOpaqueAndVersioned(t *testing.T) {
	c := Position{Epoch: "ep", Seq: 7}.Cursor()
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || string(raw) != "v1:ep:7" {
		t.Fatalf("cursor %q decodes to %q, %v; want v1:ep:7", c, raw, err)
	}
}

func TestParseCursorRejects(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	valid := enc("v1:ep:7")
	for name, in := range map[string]string{
		"empty":               "",
		"too long":            strings.Repeat("A", maxCursorLen+1),
		"not base64":          "v1:ep:7",
		"padding":             base64.URLEncoding.EncodeToString([]byte("v1:ep:7")),
		"std alphabet":        strings.NewReplacer("-", "+", "_", "/").Replace(enc("v1:e~~>:7")),
		"embedded newline":    valid[:4] + "\n" + valid[4:],
		"non-zero pad bits":   valid[:len(valid)-1] + "B",
		"unknown version":     enc("v2:ep:7"),
		"no version":          enc("ep:7"),
		"no seq":              enc("v1:ep"),
		"empty seq":           enc("v1:ep:"),
		"empty epoch":         enc("v1::7"),
		"epoch with colon":    enc("v1:a:b:7"),
		"epoch too long":      enc("v1:" + strings.Repeat("x", maxEpochLen+1) + ":7"),
		"epoch bad character": enc("v1:e p:7"),
		"negative seq":        enc("v1:ep:-7"),
		"plus seq":            enc("v1:ep:+7"),
		"leading zero":        enc("v1:ep:07"),
		"seq overflow":        enc("v1:ep:18446744073709551616"),
		"hex seq":             enc("v1:ep:0x7"),
		"trailing garbage":    enc("v1:ep:7 "),
	} {
		t.Run(name, func(t *testing.T) {
			p, err := ParseCursor(in)
			if err == nil {
				t.Fatalf("ParseCursor(%q) = %+v, want an error", in, p)
			}
			if errs.CodeOf(err) != errs.BadUserInput {
				t.Errorf("code = %s, want BAD_USER_INPUT (err %v)", errs.CodeOf(err), err)
			}
			if in != "" && strings.Contains(err.Error(), in) {
				t.Errorf("error %q echoes the input", err)
			}
		})
	}
}

// FuzzParseCursor: ParseCursor never panics, and whatever it accepts is the
// canonical cursor of what it returns.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{
		"", "djE6ZXA6Nw", Position{Epoch: "0123456789abcdef", Seq: 99}.Cursor(),
		"djE6OjA", "====", "djE6ZXA6MDc", strings.Repeat("A", 200), "djE6ZXA6Nw\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseCursor(s)
		if err != nil {
			if errs.CodeOf(err) != errs.BadUserInput {
				t.Fatalf("ParseCursor(%q): code %s, want BAD_USER_INPUT", s, errs.CodeOf(err))
			}
			return
		}
		if c := p.Cursor(); c != s {
			t.Fatalf("ParseCursor(%q) = %+v whose cursor is %q", s, p, c)
		}
	})
}
