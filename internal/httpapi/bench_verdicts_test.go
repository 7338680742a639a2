package httpapi_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/intel/inteltest"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/service/servicetest"
	"github.com/misp-relay/misp-relay/internal/verdict"
	"github.com/misp-relay/misp-relay/internal/warninglist"
)

// BenchmarkObserveHandlerPolicy is BenchmarkObserveHandler/known with what the verdict
// policy adds at its most expensive: the sample warninglists (62,754 entries) looked up for
// every matched attribute type, and tag settings matched against every tag.
func BenchmarkObserveHandlerPolicy(b *testing.B) {
	lists, err := warninglist.Load("../../sample/warninglists")
	if err != nil {
		b.Fatal(err)
	}
	cfg := service.Config{
		Backend: stubMISP(inteltest.Events(0, 3, 3)), UIURL: benchUIURL, Now: benchNow,
		Warninglists: lists,
		Policy: verdict.Policy{
			Benign:      verdict.MustTags("known-good:*"),
			Malicious:   verdict.MustTags("misp-galaxy:threat-actor=*"),
			Suspicious:  verdict.MustTags("type:osint"),
			TrustedOrgs: []string{"Example CERT"},
		},
	}
	body := observeBody(50)
	b.SetBytes(int64(len(body)))
	benchObserve(b, cfg, body, "malicious tag")
}

// BenchmarkObserveRealEvents observes 60 observables of the real published events
// (service/testdata/realevents: hashes with comments, file names of samples, report links, C2 hosts and
// addresses; a few each of every kind the events hold, and 3 values only a warninglist knows)
// through the full handler, in feed mode with the sample warninglists: what the verdict policy
// costs on real data (comments, context, relations, values on lists alone).
func BenchmarkObserveRealEvents(b *testing.B) {
	store, err := feed.Load(servicetest.RealEventsDir())
	if err != nil {
		b.Fatal(err)
	}
	lists, err := warninglist.Load("../../sample/warninglists")
	if err != nil {
		b.Fatal(err)
	}
	body := realEventsBody(b, servicetest.RealEventsDir(), 60)
	b.SetBytes(int64(len(body)))
	benchObserve(b, service.Config{Backend: store, Warninglists: lists, UIURL: benchUIURL, Now: benchNow}, body, `"judgements"`)
}

// realEventsBody is an observe body of up to n observables of the events in dir, taken in turn
// from each CTIM type they hold (the value itself, or each half of a composite value), and three
// values on the sample warninglists.
func realEventsBody(b *testing.B, dir string, n int) []byte {
	b.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	byType := map[string][]string{}
	var types []string
	seen := map[[2]string]bool{}
	add := func(t, v string) {
		if t == "" || v == "" || !intel.SafeValue(v) || seen[[2]string{t, v}] {
			return
		}
		seen[[2]string{t, v}] = true
		if byType[t] == nil {
			types = append(types, t)
		}
		byType[t] = append(byType[t], v)
	}
	ctim := map[string]string{
		"ip-dst": "ip", "ip-src": "ip", "domain": "domain", "hostname": "hostname", "url": "url", "link": "url",
		"md5": "md5", "sha1": "sha1", "sha256": "sha256", "filename": "file_name",
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || name == "manifest.json" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		var f struct {
			Event struct {
				Attribute []struct{ Type, Value string }
			}
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			b.Fatal(err)
		}
		for _, a := range f.Event.Attribute {
			if t1, t2, ok := strings.Cut(a.Type, "|"); ok {
				if v1, v2, ok := strings.Cut(a.Value, "|"); ok {
					add(ctim[t1], v1)
					add(ctim[t2], v2)
				}
				continue
			}
			add(ctim[a.Type], a.Value)
		}
	}
	slices.Sort(types)
	in := []gen.ObservableInput{{Type: "ip", Value: "8.8.8.8"}, {Type: "ip", Value: "10.1.2.3"}, {Type: "md5", Value: "d41d8cd98f00b204e9800998ecf8427e"}}
	for i := 0; len(in) < n; i++ {
		added := false
		for _, t := range types {
			if i < len(byType[t]) && len(in) < n {
				in = append(in, gen.ObservableInput{Type: t, Value: byType[t][i]})
				added = true
			}
		}
		if !added {
			break
		}
	}
	body, err := json.Marshal(in)
	if err != nil {
		b.Fatal(err)
	}
	return body
}
