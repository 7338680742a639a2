package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/gen"
)

// TestAnswerEncodingOddValues: answer writes what encoding/json writes (and the length it
// says) for what real answers rarely hold and a hostile MISP or feed can put in any text:
// HTML characters (escaped as \u003c, as encoding/json does), U+2028 and U+2029, control
// characters, invalid UTF-8 (replaced by U+FFFD), a relation's details with several keys (in
// sorted order), numbers of every size, times with nanoseconds and offsets, and an errors
// list beside the data.
func TestAnswerEncodingOddValues(t *testing.T) {
	odd := "<script>alert('x')</script> & \"quoted\" \\ \u2028\u2029 \x01\x1f\t\n tab é 日本 \xff\xfe end"
	raw := `{"data":{"sightings":{"count":1,"docs":[{"confidence":"High","count":3,"description":"ODD",
	  "id":"transient:sighting-1","observed_time":{"start_time":"2026-01-02T03:04:05.123456789+02:00","end_time":"2026-01-02T03:04:05Z"},
	  "relations":[{"origin":"MISP","relation":"Resolved_To","source":{"type":"domain","value":"a<b>.example"},"related":{"type":"ip","value":"198.51.100.7"},
	    "relation_info":{"z":1,"a":"x","m":[1.5,1e21,1e-7,123456789012345678,-0.0,0.1],"n":null,"t":true,"o":{"b":2,"a":1}}}],
	  "schema_version":"1.1.5","type":"sighting","source":"ODD"}]},
	  "judgements":{"count":1,"docs":[{"confidence":"High","disposition":2,"disposition_name":"Malicious","id":"transient:judgement-1",
	    "observable":{"type":"url","value":"http://x.example/?a=1&b=<2>"},"priority":85,"reason":"ODD",
	    "schema_version":"1.1.5","severity":"High","source":"MISP","type":"judgement","valid_time":{"start_time":"2026-01-02T00:00:00Z"}}]}},
	  "errors":[{"code":"unknown","message":"ODD","type":"fatal"}]}`
	var v gen.EnrichResult
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatal(err)
	}
	// Invalid UTF-8 cannot come through JSON: the odd text is put in after decoding.
	sg := &v.Data.Sightings.Docs[0]
	sg.Description, sg.Source = &odd, &odd
	v.Data.Judgements.Docs[0].Reason = &odd
	(*v.Errors)[0].Message = odd
	for _, value := range []any{gen.ObserveObservables200JSONResponse(v), gen.DeliberateObservables200JSONResponse(v)} {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(value); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		if err := (&api{}).answer(rec, value); err != nil {
			t.Fatal(err)
		}
		if got := rec.Body.Bytes(); !bytes.Equal(want.Bytes(), got) {
			t.Errorf("answer wrote\n%s\nencoding/json writes\n%s", got, want.Bytes())
		}
		if n := rec.Header().Get("Content-Length"); n != strconv.Itoa(want.Len()) {
			t.Errorf("Content-Length %s, want %d", n, want.Len())
		}
		for _, s := range []string{`\u003cscript\u003e`, `\u2028\u2029`, "\ufffd", `"relation_info":{"a":"x","m":`} {
			if !bytes.Contains(want.Bytes(), []byte(s)) {
				t.Errorf("the answer lacks %s: the test no longer tests it", s)
			}
		}
	}
}

// panicky panics when written, as a goccy/go-json bug reading a type's layout would.
type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("boom") }

// TestEncodeFastRecovers: a panic inside goccy/go-json is an error, so that answer falls back
// to encoding/json rather than lose the request.
func TestEncodeFastRecovers(t *testing.T) {
	var buf bytes.Buffer
	err := encodeFast(&buf, map[string]any{"x": panicky{}})
	if err == nil || !strings.Contains(err.Error(), "panicked: boom") {
		t.Errorf("encodeFast: %v, want the panic as an error", err)
	}
}
