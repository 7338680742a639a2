package httpapi_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/misp-relay/misp-relay/internal/gen"
)

// sameAsEncodingJSON checks that an answer of observe or deliberate, which goccy/go-json
// writes (see answer), is the bytes encoding/json writes for the same value: body is decoded
// into the spec's type, which holds every field the relay writes, and written again by
// encoding/json, which must give the same bytes back. TestRealEvents runs it over every
// answer of the real events and of the sample feed (tags with quotes, comments, relations
// with their details, decay scores, warninglist reasons; about 3 MB): a goccy release that
// escapes, orders, formats or omits anything differently fails there.
func sameAsEncodingJSON(t *testing.T, path string, body []byte) {
	t.Helper()
	var v gen.EnrichResult
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var std bytes.Buffer
	if err := json.NewEncoder(&std).Encode(v); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(std.Bytes(), body) {
		i := 0
		for i < min(len(body), std.Len()) && body[i] == std.Bytes()[i] {
			i++
		}
		t.Errorf("%s: the answer differs from encoding/json's at byte %d of %d:\nrelay: %.200s\nstd:   %.200s",
			path, i, len(body), body[max(0, i-40):], std.Bytes()[max(0, i-40):])
	}
}
