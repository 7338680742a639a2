//go:build misplive

package misplive

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/service/servicetest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// testRealEvents loads the real published events of service/testdata/realevents (CIRCL OSINT
// events and a bank's) into the MISP, as they are but for their database ids, and checks that
// the relay gives every observable they hold the verdict it gives in feed mode from the same
// files. The differences allowed are those evidence only a MISP has decides, which the
// deciding reason names: the warninglists it has enabled (the suite enables three), and its
// decay scores (the suite enables the NIDS model, under which these 2016-2018 indicators have
// decayed). The events are kept between runs (their UUIDs are theirs, and MISP blocks a
// deleted event's UUID from coming back).
func testRealEvents(t *testing.T, api *mispAPI) {
	dir := servicetest.RealEventsDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || e.Name() == "manifest.json" {
			continue
		}
		uuid := strings.TrimSuffix(e.Name(), ".json")
		if status, _ := api.call(t, http.MethodGet, "/events/view/"+uuid, nil); status == http.StatusOK {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var file map[string]any
		if err := json.Unmarshal(raw, &file); err != nil {
			t.Fatal(err)
		}
		ev, ok := file["Event"]
		if !ok {
			ev = file
		}
		api.json(t, http.MethodPost, "/events/add", map[string]any{"Event": withoutIDs(ev)}, nil)
	}

	obs, err := servicetest.Observables(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys := servicetest.Keys(obs)
	store, err := feed.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	client, err := misp.New(misp.Config{BaseURL: api.base, Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	contract := testkit.LoadContract(t)
	check := func(path string, status int, h http.Header, body []byte) {
		contract.Check(t, http.MethodPost, path, status, h, body)
	}
	ctx := context.Background()
	fromFeed, err := servicetest.Answers(ctx, servicetest.Config{Backend: store, Check: check}, keys)
	if err != nil {
		t.Fatal(err)
	}
	fromMISP, err := servicetest.Answers(ctx, servicetest.Config{Backend: client, Key: api.key, Check: check}, keys)
	if err != nil {
		t.Fatal(err)
	}
	same, listed, decayed := 0, 0, 0
	for _, k := range keys {
		f, m := fromFeed[k], fromMISP[k]
		switch {
		case f.Verdict == m.Verdict:
			same++
		case m.Verdict == "Common" && decidedBy(m, "Common: on MISP warninglist"):
			listed++
		case m.Verdict == "Unknown" && decidedBy(m, "Unknown: decayed in MISP"):
			decayed++
		default:
			t.Errorf("%s %s: feed %q, MISP %q (MISP's judgements %v)", k.Type, k.Value, f.Verdict, m.Verdict, m.Judgements)
		}
	}
	t.Logf("%d observables of the real events: %d verdicts the same through MISP as in feed mode, %d Common by MISP's enabled warninglists, %d Unknown by MISP's decay model",
		len(keys), same, listed, decayed)
	if same < len(keys)/4 {
		t.Errorf("only %d of %d verdicts the same: the comparison says little", same, len(keys))
	}
}

// decidedBy tells whether one of an answer's judgements was decided by what prefix says.
func decidedBy(a servicetest.Answer, prefix string) bool {
	for _, j := range a.Judgements {
		if strings.HasPrefix(j.Reason, prefix) {
			return true
		}
	}
	return false
}

// withoutIDs drops the database ids an events export carries (MISP assigns its own on add).
func withoutIDs(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch k {
			case "id", "event_id", "orgc_id", "org_id", "object_id", "attribute_id", "sharing_group_id":
				delete(x, k)
			default:
				x[k] = withoutIDs(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = withoutIDs(e)
		}
	}
	return v
}
