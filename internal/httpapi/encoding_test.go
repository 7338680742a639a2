package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/service/servicetest"
	"github.com/misp-relay/misp-relay/internal/warninglist"
)

// TestAnswerEncoding: the answers of the list routes, which goccy/go-json writes (answer),
// are the bytes encoding/json writes for the same value. Every answer of observe and
// deliberate over every value of the real events and of the sample feed (tags with quotes,
// comments, relations with their details, decay scores, warninglist reasons) is decoded into
// the spec's type, which holds every field the relay writes, and written again by
// encoding/json, which must give the same bytes back: a goccy release that escapes, orders,
// formats or omits anything differently fails here.
func TestAnswerEncoding(t *testing.T) {
	lists, err := warninglist.Load("../../sample/warninglists")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{servicetest.RealEventsDir(), "../../sample/feed"} {
		obs, err := servicetest.Observables(dir)
		if err != nil {
			t.Fatal(err)
		}
		store, err := feed.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		var answers, size int
		check := func(path string, status int, _ http.Header, body []byte) {
			if status != http.StatusOK {
				t.Errorf("%s: HTTP %d", path, status)
				return
			}
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
			answers++
			size += len(body)
		}
		cfg := servicetest.Config{Backend: store, Warninglists: lists, Check: check}
		if _, err := servicetest.Answers(context.Background(), cfg, servicetest.Keys(obs)); err != nil {
			t.Fatal(err)
		}
		if answers < 2 || size < 100_000 && dir != "../../sample/feed" {
			t.Errorf("%s: %d answers, %d bytes: too little compared", dir, answers, size)
		}
		t.Logf("%s: %d answers, %d bytes, the same as encoding/json's", dir, answers, size)
	}
}
