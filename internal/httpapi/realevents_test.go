package httpapi_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/service/servicetest"
	"github.com/misp-relay/misp-relay/internal/testkit"
	"github.com/misp-relay/misp-relay/internal/warninglist"
)

// TestRealEvents replays real published MISP events (testdata/realevents: CIRCL OSINT feed
// events and a bank's event, see its README) in feed mode, with and without the sample
// warninglists, and checks over every observable their attributes hold what an analyst must
// be able to rely on:
//   - no IDS-flagged indicator is Common unless evidence about the value says so (a
//     warninglist, more false-positive reports than sightings), and each one is judged;
//   - no link, and no file-name half of a filename|<hash> or malware-sample, is judged (unless
//     the same event also holds the value as an indicator);
//   - every malware-sample is found by its hash;
//   - every attribute comment shows in its sighting; deliberate agrees with observe; every
//     answer is valid against api/openapi.yaml.
//
// The sample feed's events get the same checks: it has a malware-sample, the real events
// have none.
func TestRealEvents(t *testing.T) {
	lists, err := warninglist.Load("../../sample/warninglists")
	if err != nil {
		t.Fatal(err)
	}
	contract := testkit.LoadContract(t)
	for name, dir := range map[string]string{"real events": servicetest.RealEventsDir(), "sample feed": "../../sample/feed"} {
		obs, store := feedOf(t, dir)
		for _, withLists := range []bool{false, true} {
			t.Run(name+map[bool]string{false: ", no warninglists", true: ", sample warninglists"}[withLists], func(t *testing.T) {
				cfg := servicetest.Config{Backend: store, Check: func(path string, status int, header http.Header, body []byte) {
					contract.Check(t, http.MethodPost, path, status, header, body)
				}}
				if withLists {
					cfg.Warninglists = lists
				}
				checkRealEvents(t, cfg, obs)
			})
		}
	}
}

// feedOf loads the events of dir as a feed, with the observables their attributes hold.
func feedOf(t *testing.T, dir string) ([]servicetest.Observable, *feed.Store) {
	t.Helper()
	obs, err := servicetest.Observables(dir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := feed.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return obs, store
}

// checkRealEvents asks the relay about obs through cfg and checks the answers (TestRealEvents).
func checkRealEvents(t *testing.T, cfg servicetest.Config, obs []servicetest.Observable) {
	t.Helper()
	var keys []servicetest.Key
	seen := map[servicetest.Key]bool{}
	indicatorIn := map[[2]string]bool{} // event, lower-cased value: held as an indicator
	for _, o := range obs {
		k := servicetest.Key{Type: o.Type, Value: o.Value}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
		if o.Role == servicetest.RoleIndicator {
			indicatorIn[[2]string{o.EventUUID, strings.ToLower(o.Value)}] = true
		}
	}
	answers, err := servicetest.Answers(context.Background(), cfg, keys)
	if err != nil {
		t.Fatal(err)
	}
	var ids, idsCommon, links, linksJudged, names, namesJudged, samples, comments int
	for _, o := range obs {
		a := answers[servicetest.Key{Type: o.Type, Value: o.Value}]
		j, judged := a.Judgements[o.EventUUID]
		alsoIndicator := indicatorIn[[2]string{o.EventUUID, strings.ToLower(o.Value)}]
		switch {
		case o.Role == servicetest.RoleIndicator && o.ToIDS:
			ids++
			if !judged {
				t.Errorf("IDS-flagged %s %s (%s) of event %s is not judged", o.Type, o.Value, o.AttributeType, o.EventUUID)
			}
			if j.Disposition == "Common" {
				idsCommon++
				if !strings.Contains(j.Reason, "warninglist") && !strings.Contains(j.Reason, "false-positive") {
					t.Errorf("IDS-flagged %s %s is Common without evidence about the value: %q", o.Type, o.Value, j.Reason)
				}
			}
		case o.AttributeType == "link":
			links++
			if judged && !alsoIndicator {
				linksJudged++
				t.Errorf("link %s judged: %+v", o.Value, j)
			}
		case o.Role == servicetest.RoleFileNameHalf:
			names++
			if judged && !alsoIndicator {
				namesJudged++
				t.Errorf("file name %s of a %s judged: %+v", o.Value, o.AttributeType, j)
			}
		}
		if o.AttributeType == "malware-sample" && o.Role == servicetest.RoleIndicator {
			samples++
			if _, found := a.Sightings[o.EventUUID]; !found || !judged {
				t.Errorf("malware-sample %s of event %s not found by its hash", o.Value, o.EventUUID)
			}
		}
		if c := intel.CleanComment(o.Comment); c != "" {
			comments++
			if d := a.Sightings[o.EventUUID]; !strings.Contains(d, `comment: "`+strings.TrimSuffix(c, "…")) && !moreComments(d) {
				t.Errorf("%s %s: the comment %q is not in its sighting %q", o.Type, o.Value, c, d)
			}
		}
		if a.Verdict != a.Deliberate {
			t.Errorf("%s %s: observe says %q, deliberate %q", o.Type, o.Value, a.Verdict, a.Deliberate)
		}
	}
	t.Logf("%d observables (%d distinct): %d IDS-flagged indicators (%d Common, by warninglists or false positives), %d links (%d judged), %d composite file names (%d judged), %d malware-sample hashes, %d comments",
		len(obs), len(keys), ids, idsCommon, links, linksJudged, names, namesJudged, samples, comments)
}

// moreComments reports whether a sighting quotes as many comments as it may: other
// attributes' comments of the same event then fill it.
func moreComments(description string) bool { return strings.Count(description, `comment: "`) == 3 }

var _ service.Warninglists = (*warninglist.Set)(nil)

// TestRealEventsFeedAndMISP: the real events loaded into the fake MISP (which speaks MISP's
// wire format and matches values as MISP does) give every observable the verdict the feed
// gives; the same comparison against a real MISP belongs to the real-MISP suite, with
// servicetest.
func TestRealEventsFeedAndMISP(t *testing.T) {
	dir := servicetest.RealEventsDir()
	obs, store := feedOf(t, dir)
	keys := servicetest.Keys(obs)
	var events [][]byte
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && e.Name() != "manifest.json" {
			raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, raw)
		}
	}
	srv := misptest.New(t, testMISPKey, events...)
	client, err := misp.New(misp.Config{BaseURL: srv.URL, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fromFeed, err := servicetest.Answers(context.Background(), servicetest.Config{Backend: store}, keys)
	if err != nil {
		t.Fatal(err)
	}
	fromMISP, err := servicetest.Answers(context.Background(), servicetest.Config{Backend: client, Key: testMISPKey}, keys)
	if err != nil {
		t.Fatal(err)
	}
	differ := 0
	for _, k := range keys {
		if f, m := fromFeed[k].Verdict, fromMISP[k].Verdict; f != m {
			differ++
			t.Errorf("%s %s: feed %q, MISP %q", k.Type, k.Value, f, m)
		}
	}
	t.Logf("%d observables, %d answered by the feed, %d verdicts differ through MISP", len(keys), len(fromFeed), differ)
}
