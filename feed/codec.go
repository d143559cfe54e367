package feed

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/taskpulse/taskpulse/store"
)

// wire is the JSON of one stream entry (a log entry; its seq is the
// entry's id) or one live message: short names, Data and Control inline
// as the JSON they are (byte for byte: RawMessage is copied as it is on
// decode), in base64 only when they are not JSON.
//
//	{"t":"TASK_CREATED","r":["project:p1"],"d":{...},"c":{...},"a":1700000000000000000}
type wire struct {
	Type     string          `json:"t"`
	Rooms    []string        `json:"r,omitempty"`
	Data     json.RawMessage `json:"d,omitempty"`
	Data64   []byte          `json:"b,omitempty"`
	Ctl      json.RawMessage `json:"c,omitempty"`
	Ctl64    []byte          `json:"cb,omitempty"`
	At       int64           `json:"a,omitempty"` // Unix nanoseconds; absent: zero time
	Instance string          `json:"i,omitempty"` // live: the publishing instance
}

// streamField is the one field of a stream entry.
const streamField = "e"

// encodeWire renders the fields by hand: encoding/json would compact (so
// change) the raw Data and Control.
func encodeWire(typ string, rooms []string, data, ctl []byte, at time.Time, instance string) []byte {
	b := make([]byte, 0, 64+len(data)+len(ctl))
	b = append(b, `{"t":`...)
	b = appendJSON(b, typ)
	if len(rooms) > 0 {
		b = append(b, `,"r":`...)
		b = appendJSON(b, rooms)
	}
	b = appendRaw(b, "d", "b", data)
	b = appendRaw(b, "c", "cb", ctl)
	if !at.IsZero() {
		b = append(b, `,"a":`...)
		b = strconv.AppendInt(b, at.UnixNano(), 10)
	}
	if instance != "" {
		b = append(b, `,"i":`...)
		b = appendJSON(b, instance)
	}
	return append(b, '}')
}

func appendJSON(b []byte, v any) []byte {
	j, _ := json.Marshal(v) // strings and string slices always encode
	return append(b, j...)
}

// appendRaw adds v under raw when it is JSON that decodes back to the
// same bytes, else base64 under b64; nothing when empty.
func appendRaw(b []byte, raw, b64 string, v []byte) []byte {
	switch {
	case len(v) == 0:
		return b
	case inlineJSON(v):
		b = append(b, `,"`...)
		b = append(b, raw...)
		b = append(b, `":`...)
		return append(b, v...)
	default:
		b = append(b, `,"`...)
		b = append(b, b64...)
		b = append(b, `":"`...)
		b = base64.StdEncoding.AppendEncode(b, v)
		return append(b, '"')
	}
}

// inlineJSON: v is a JSON value without surrounding space (which a decode
// would drop) and not null (which a decode would turn into nothing).
func inlineJSON(v []byte) bool {
	if isSpace(v[0]) || isSpace(v[len(v)-1]) || bytes.Equal(v, []byte("null")) {
		return false
	}
	return json.Valid(v)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func decodeWire(b []byte) (wire, error) {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return wire{}, err
	}
	if w.Type == "" {
		return wire{}, fmt.Errorf("no type")
	}
	if w.Data == nil {
		w.Data = w.Data64
	}
	if w.Ctl == nil {
		w.Ctl = w.Ctl64
	}
	return w, nil
}

func (w wire) time() time.Time {
	if w.At == 0 {
		return time.Time{}
	}
	return time.Unix(0, w.At).UTC()
}

// encodeEntry is the stream field value of a log entry.
func encodeEntry(e store.LogEntry) []byte {
	return encodeWire(e.Type, e.Rooms, e.Data, e.Control, e.At, "")
}

// decodeEntry is the log entry of stream entry id with field value v.
func decodeEntry(id string, v any) (store.LogEntry, error) {
	seq, ok := parseID(id)
	if !ok {
		return store.LogEntry{}, fmt.Errorf("stream entry id %q is not 0-<seq>", id)
	}
	s, ok := v.(string)
	if !ok {
		return store.LogEntry{Seq: seq}, fmt.Errorf("stream entry %s has no field %q", id, streamField)
	}
	w, err := decodeWire([]byte(s))
	if err != nil {
		return store.LogEntry{Seq: seq}, fmt.Errorf("stream entry %s: %w", id, err)
	}
	return store.LogEntry{Seq: seq, Type: w.Type, Rooms: w.Rooms, Data: w.Data, Control: w.Ctl, At: w.time()}, nil
}

// streamID is the stream id of seq.
func streamID(seq int64) string { return "0-" + strconv.FormatInt(seq, 10) }

// parseID is the seq of a stream id "0-<seq>".
func parseID(id string) (int64, bool) {
	d, ok := strings.CutPrefix(id, "0-")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseInt(d, 10, 64)
	return seq, err == nil && seq > 0
}
