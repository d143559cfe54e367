package transport

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncateReason(t *testing.T) {
	cases := []struct {
		name, in string
		wantLen  int
	}{
		{"short", "Forbidden", 9},
		{"exactly the limit", strings.Repeat("a", 123), 123},
		{"ASCII over the limit", strings.Repeat("a", 200), 123},
		{"no rune split", strings.Repeat("a", 122) + "é" + "tail", 122}, // é is 2 bytes at 122..123
	}
	for _, tc := range cases {
		got := truncateReason(tc.in)
		if len(got) != tc.wantLen || !utf8.ValidString(got) || !strings.HasPrefix(tc.in, got) {
			t.Errorf("%s: truncateReason = %d bytes (valid UTF-8: %v), want %d", tc.name, len(got), utf8.ValidString(got), tc.wantLen)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.InitTimeout != DefaultInitTimeout || o.PingInterval != DefaultPingInterval || o.WriteTimeout != DefaultWriteTimeout ||
		o.ReadLimit != DefaultReadLimit || o.SendQueue != DefaultSendQueue || o.MaxSubsPerConn != DefaultMaxSubsPerConn || o.Logger == nil {
		t.Errorf("defaults = %+v", o)
	}
}
