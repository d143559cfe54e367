package transport

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// A rendered event's bytes say what json.Marshal's say, framed by hand or
// not: the same bytes, but for the characters json.Marshal escapes for
// HTML (<, >, &), which the hand-framed data keeps as gqlgen wrote them —
// equal JSON to any parser.
func TestMarshalResponseIsJSONMarshal(t *testing.T) {
	yes := true
	for name, resp := range map[string]*graphql.Response{
		"data":             {Data: json.RawMessage(`{"taskUpdates":{"type":"TASK_CREATED","task":{"description":"é\u2028\"q\""}}}`)},
		"null data":        {Data: json.RawMessage(`null`)},
		"empty extensions": {Data: json.RawMessage(`{"a":1}`), Extensions: map[string]any{}},
		"html":             {Data: json.RawMessage(`{"task":{"title":"<b>&</b>"}}`)},
		"no data":          {},
		"errors":           {Data: json.RawMessage(`null`), Errors: gqlerror.List{{Message: "boom", Extensions: map[string]any{"code": "INTERNAL"}}}},
		"extensions":       {Data: json.RawMessage(`{}`), Extensions: map[string]any{"cost": 3}},
		"incremental too":  {Data: json.RawMessage(`{}`), Label: "l", HasNext: &yes},
	} {
		want, err := json.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		got, err := marshalResponse(resp)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var g, w any
		if json.Unmarshal(got, &g) != nil || json.Unmarshal(want, &w) != nil || !reflect.DeepEqual(g, w) {
			t.Errorf("%s: %s; want %s", name, got, want)
		}
		if name != "html" && string(got) != string(want) {
			t.Errorf("%s: bytes %s; want %s", name, got, want)
		}
	}
}
