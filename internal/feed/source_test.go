package feed_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/testkit"
	"github.com/misp-relay/misp-relay/internal/upstream"
)

// feedServer publishes a genFeed under /feed/ as a web server does: an ETag and a
// Last-Modified for the manifest, 304 to a conditional request that matches. It counts what
// it is asked.
type feedServer struct {
	mu          sync.Mutex
	files       genFeed
	version     int
	hits        map[string]int
	notModified int
	// gates hold a file's answer until closed.
	gates map[string]chan struct{}
	// override answers a file instead of the feed, when set.
	override func(w http.ResponseWriter, r *http.Request, name string) bool
}

func newFeedServer(tb testing.TB, files genFeed) (*feedServer, *httptest.Server) {
	tb.Helper()
	fs := &feedServer{files: files, version: 1, hits: map[string]int{}, gates: map[string]chan struct{}{}}
	srv := httptest.NewTLSServer(fs)
	tb.Cleanup(srv.Close)
	return fs, srv
}

func (fs *feedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/feed/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	fs.mu.Lock()
	fs.hits[name]++
	gate := fs.gates[name]
	override := fs.override
	fs.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if override != nil && override(w, r, name) {
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	b, ok := fs.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if name == "manifest.json" {
		etag := fmt.Sprintf(`"v%d"`, fs.version)
		modified := time.Date(2026, 1, 1, 0, 0, fs.version, 0, time.UTC).Format(http.TimeFormat)
		if r.Header.Get("If-None-Match") == etag {
			fs.notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", modified)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// change edits the feed under the server's lock and gives the manifest a new version.
func (fs *feedServer) change(f func(files genFeed)) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f(fs.files)
	fs.version++
}

func (fs *feedServer) hitsOf(name string) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.hits[name]
}

func newSource(tb testing.TB, srv *httptest.Server, limits feed.Limits) *feed.Source {
	tb.Helper()
	s, err := feed.NewSource(feed.SourceConfig{Name: "test", Location: srv.URL + "/feed/", HTTPClient: srv.Client(), Limits: limits})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// searcher is what a Store and a Source both answer: one query.
type searcher interface {
	Search(ctx context.Context, key string, q intel.Query) ([]intel.Event, error)
}

func search(tb testing.TB, s searcher, value string, types ...string) []intel.Event {
	tb.Helper()
	evs, err := s.Search(context.Background(), "", intel.Query{Value: value, Types: types})
	if err != nil {
		tb.Fatalf("Search(%q): %v", value, err)
	}
	return evs
}

func eventUUIDs(evs []intel.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.UUID)
	}
	return out
}

// TestSourceAnswersAsStore: a Source gives, for every value of a feed (in other letter
// cases, by type, with a limit), exactly the answer a Store gives for the same feed: the
// sample feed and a generated one whose values repeat across events.
func TestSourceAnswersAsStore(t *testing.T) {
	for name, f := range map[string]genFeed{"sample": sampleGenFeed(t), "generated": newGenFeed(t, 7, 16, 25, 200)} {
		t.Run(name, func(t *testing.T) {
			store, overHTTPS, fromDir := storeAndSources(t, f)
			for _, s := range []*feed.Source{overHTTPS, fromDir} {
				if err := s.Refresh(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if st := fromDir.Status(); st.Events != store.Len() || st.State != feed.Loaded {
				t.Fatalf("status %+v, want %d events loaded", st, store.Len())
			}
			vals := f.values(t)
			vals = append(vals, [2]string{"domain", "nowhere.invalid"}, [2]string{"ip-dst", "2001:DB8:0::1"})
			// A batch (intel.Backend.Lookup) answers each query as alone, as the Store's does.
			var batch []intel.Query
			for _, v := range vals {
				batch = append(batch, intel.Query{Value: v[1]}, intel.Query{Value: v[1], Types: []string{v[0]}, Limit: 1})
			}
			want := store.Lookup(t.Context(), "", batch)
			for _, s := range []*feed.Source{overHTTPS, fromDir} {
				if d := cmp.Diff(want, s.Lookup(t.Context(), "", batch)); d != "" {
					t.Fatalf("%s: Lookup: Store and Source differ (-store +source):\n%s", s.Name(), d)
				}
			}
			for _, v := range vals {
				typ, value := v[0], v[1]
				halves := []string{value}
				if strings.Contains(typ, "|") {
					a, b, _ := strings.Cut(value, "|")
					halves = []string{a, b}
				}
				for _, h := range halves {
					for _, q := range []intel.Query{
						{Value: h},
						{Value: upper(h) + "  "},
						{Value: h, Types: []string{typ}},
						{Value: h, Types: []string{"email"}},
						{Value: h, Limit: 1},
					} {
						want, err := store.Search(t.Context(), "", q)
						if err != nil {
							t.Fatal(err)
						}
						for _, s := range []*feed.Source{overHTTPS, fromDir} {
							got, err := s.Search(t.Context(), "", q)
							if err != nil {
								t.Fatal(err)
							}
							if d := cmp.Diff(want, got); d != "" {
								t.Fatalf("%s: Search(%+v): Store and Source differ (-store +source):\n%s", s.Name(), q, d)
							}
						}
					}
				}
			}
		})
	}
}

// TestSourceRefreshOverHTTPS: a feed served over HTTPS changes between refreshes. An
// unchanged manifest costs one 304; a new event and a changed one (new manifest timestamp)
// are fetched, an unchanged one is not fetched again, and a removed one is dropped.
func TestSourceRefreshOverHTTPS(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	evA, evB, evC := makeEvent(r, 0, 4, 1<<30), makeEvent(r, 1, 4, 1<<30), makeEvent(r, 2, 4, 1<<30)
	files := genFeed{}
	manifest := map[string]any{}
	for _, ev := range []genEvent{evA, evB, evC} {
		files.put(t, ev)
		manifest[ev.UUID] = map[string]any{"timestamp": ev.Timestamp}
	}
	writeManifest := func(files genFeed) {
		b, err := json.Marshal(manifest)
		if err != nil {
			t.Fatal(err)
		}
		files["manifest.json"] = b
	}
	writeManifest(files)
	fs, srv := newFeedServer(t, files)
	s := newSource(t, srv, feed.Limits{})
	if s.Name() != "MISP feed test" {
		t.Fatalf("Name() = %q", s.Name())
	}
	if st := s.Status(); st.State != feed.Loading {
		t.Fatalf("before the first load: %+v", st)
	}
	if err := s.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := s.Status()
	if st.State != feed.Loaded || st.Events != 3 || st.Values != 12 || st.Fetched != 3 || st.Location != srv.URL+"/feed/" {
		t.Fatalf("after the load: %+v", st)
	}
	valueOf := func(ev genEvent) string { // a value that is not a composite
		for _, a := range append(ev.Attribute, ev.Object[0].Attribute...) {
			if !strings.Contains(a.Type, "|") {
				return a.Value
			}
		}
		t.Fatal("no simple value")
		return ""
	}
	if got := eventUUIDs(search(t, s, valueOf(evC))); !cmp.Equal(got, []string{evC.UUID}) {
		t.Fatalf("C's value: %v", got)
	}

	// Unchanged: one 304, nothing else asked.
	if err := s.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.NotModified != 1 || fs.notModified != 1 || st.Fetched != 3 {
		t.Fatalf("after an unchanged refresh: status %+v, server's 304s %d", st, fs.notModified)
	}

	// D is new, B changed (a new value, a new timestamp), C is gone, A is as it was.
	evD := makeEvent(r, 3, 4, 1<<30)
	evB.Attribute = append(evB.Attribute, genAttr{Type: "domain", Category: "Network activity", Value: "added.example", Timestamp: "1800000000"})
	evB.Timestamp = "1800000000"
	fs.change(func(files genFeed) {
		delete(manifest, evC.UUID)
		delete(files, evC.UUID+".json")
		manifest[evD.UUID] = map[string]any{"timestamp": evD.Timestamp}
		manifest[evB.UUID] = map[string]any{"timestamp": evB.Timestamp}
		files.put(t, evD)
		files.put(t, evB)
		writeManifest(files)
	})
	if err := s.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	for uuid, want := range map[string]int{evA.UUID: 1, evB.UUID: 2, evC.UUID: 1, evD.UUID: 1} {
		if got := fs.hitsOf(uuid + ".json"); got != want {
			t.Errorf("event %s fetched %d times, want %d", uuid, got, want)
		}
	}
	if got := fs.hitsOf("manifest.json"); got != 3 {
		t.Errorf("manifest asked %d times, want 3", got)
	}
	if st := s.Status(); st.Events != 3 || st.Values != 13 || st.Fetched != 5 || st.State != feed.Loaded {
		t.Fatalf("after the change: %+v", st)
	}
	if got := eventUUIDs(search(t, s, "ADDED.example")); !cmp.Equal(got, []string{evB.UUID}) {
		t.Errorf("B's new value: %v", got)
	}
	if got := search(t, s, valueOf(evC)); len(got) != 0 {
		t.Errorf("C's value after C left: %v", eventUUIDs(got))
	}
	for _, ev := range []genEvent{evA, evD} {
		if got := eventUUIDs(search(t, s, valueOf(ev))); !cmp.Equal(got, []string{ev.UUID}) {
			t.Errorf("%s's value: %v", ev.Info, got)
		}
	}
}

// TestSourceServesWhileLoading: lookups answer from the events loaded so far while the rest
// of the feed is still coming.
func TestSourceServesWhileLoading(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	files := genFeed{}
	manifest := map[string]any{}
	var evs []genEvent
	for n := range 3 {
		ev := makeEvent(r, n, 1, 1<<30)
		ev.Attribute, ev.Object = []genAttr{{Type: "domain", Value: fmt.Sprintf("loading%d.example", n)}}, nil
		files.put(t, ev)
		manifest[ev.UUID] = map[string]any{"timestamp": ev.Timestamp}
		evs = append(evs, ev)
	}
	b, _ := json.Marshal(manifest)
	files["manifest.json"] = b
	// Events are fetched in key order: hold the second one.
	keys := []string{evs[0].UUID, evs[1].UUID, evs[2].UUID}
	sortStrings(keys)
	fs, srv := newFeedServer(t, files)
	gate := make(chan struct{})
	fs.gates[keys[1]+".json"] = gate
	s := newSource(t, srv, feed.Limits{})
	done := make(chan error, 1)
	go func() { done <- s.Refresh(context.Background()) }()
	if !testkit.Poll(testkit.WaitTimeout, func() bool { return s.Status().Events == 1 }) {
		t.Fatalf("the first event was never served: %+v", s.Status())
	}
	if st := s.Status(); st.State != feed.Loading {
		t.Errorf("while loading: %+v", st)
	}
	byKey := map[string]string{}
	for n, ev := range evs {
		byKey[ev.UUID] = fmt.Sprintf("loading%d.example", n)
	}
	if got := eventUUIDs(search(t, s, byKey[keys[0]])); !cmp.Equal(got, []string{keys[0]}) {
		t.Errorf("the loaded event's value: %v", got)
	}
	if got := search(t, s, byKey[keys[1]]); len(got) != 0 {
		t.Errorf("the held event's value: %v", eventUUIDs(got))
	}
	if err := s.Ping(t.Context(), ""); err != nil {
		t.Errorf("Ping while loading: %v", err)
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if got := eventUUIDs(search(t, s, byKey[k])); !cmp.Equal(got, []string{k}) {
			t.Errorf("after the load, %s: %v", byKey[k], got)
		}
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestSourceHostile: a feed answering garbage, too much, or a redirect elsewhere is a failing
// feed (or loses the events at fault), never a crash or unbounded memory; a failing refresh
// keeps the last good data.
func TestSourceHostile(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	good := func() (genFeed, []genEvent) {
		files := genFeed{}
		manifest := map[string]any{}
		var evs []genEvent
		for n := range 3 {
			ev := makeEvent(r, n, 5, 1<<30)
			files.put(t, ev)
			manifest[ev.UUID] = map[string]any{"timestamp": ev.Timestamp}
			evs = append(evs, ev)
		}
		b, _ := json.Marshal(manifest)
		files["manifest.json"] = b
		return files, evs
	}
	elsewhere := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the relay followed a redirect off the feed's host")
	}))
	defer elsewhere.Close()

	for _, tc := range []struct {
		name       string
		limits     feed.Limits
		edit       func(files genFeed, evs []genEvent)
		override   func(w http.ResponseWriter, r *http.Request, name string) bool
		wantErr    string // the load fails, saying this
		wantEvents int    // else, events served
	}{
		{
			name: "garbage manifest", edit: func(f genFeed, _ []genEvent) { f["manifest.json"] = []byte("<html>hello</html>") },
			wantErr: "not a MISP feed manifest",
		},
		{
			name: "manifest not an object", edit: func(f genFeed, _ []genEvent) { f["manifest.json"] = []byte(`[1,2]`) },
			wantErr: "not a MISP feed manifest",
		},
		{
			name: "path in manifest", edit: func(f genFeed, _ []genEvent) { f["manifest.json"] = []byte(`{"../../etc/passwd":{}}`) },
			wantErr: "is not an event UUID",
		},
		{name: "manifest over its cap", limits: feed.Limits{ManifestBytes: 64}, wantErr: "larger than the relay accepts"},
		{name: "too many events", limits: feed.Limits{Events: 2}, wantErr: "lists 3 events, more than the 2"},
		{name: "manifest missing", edit: func(f genFeed, _ []genEvent) { delete(f, "manifest.json") }, wantErr: "HTTP 404"},
		{name: "redirect off the host", override: func(w http.ResponseWriter, r *http.Request, _ string) bool {
			http.Redirect(w, r, elsewhere.URL+"/feed/manifest.json", http.StatusFound)
			return true
		}, wantErr: "off the feed's host"},
		{
			name: "gzip bomb event", limits: feed.Limits{EventBytes: 1 << 20}, wantEvents: 2,
			override: func(w http.ResponseWriter, _ *http.Request, name string) bool {
				if name == "manifest.json" {
					return false
				}
				fsMu.Lock()
				defer fsMu.Unlock()
				if bombed {
					return false
				}
				bombed = true
				w.Header().Set("Content-Encoding", "gzip")
				_, _ = w.Write(testkit.GzipBomb(t, `{"Event":{"info":"`, []byte(strings.Repeat("A", 1<<20)), 64, `"}}`))
				return true
			},
		},
		{name: "event not JSON", wantEvents: 2, edit: func(f genFeed, evs []genEvent) { f[evs[1].UUID+".json"] = []byte("{{{") }},
		{name: "event of another uuid", wantEvents: 2, edit: func(f genFeed, evs []genEvent) { f[evs[1].UUID+".json"] = f[evs[0].UUID+".json"] }},
		{name: "event missing", wantEvents: 2, edit: func(f genFeed, evs []genEvent) { delete(f, evs[2].UUID+".json") }},
		{name: "value cap", limits: feed.Limits{Values: 11}, wantEvents: 2},
		{name: "manifest without timestamps", wantEvents: 3, edit: func(f genFeed, evs []genEvent) {
			m := map[string]any{}
			for _, ev := range evs {
				m[ev.UUID] = map[string]any{"info": ev.Info}
			}
			f["manifest.json"], _ = json.Marshal(m)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bombed = false
			files, evs := good()
			if tc.edit != nil {
				tc.edit(files, evs)
			}
			fs, srv := newFeedServer(t, files)
			fs.override = tc.override
			s := newSource(t, srv, tc.limits)
			err := s.Refresh(t.Context())
			st := s.Status()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Refresh: %v, want an error saying %q", err, tc.wantErr)
				}
				if st.State != feed.Failing || !strings.Contains(st.Error, tc.wantErr) || !strings.Contains(st.Error, "MISP feed test") {
					t.Errorf("status %+v", st)
				}
				_, err := s.Search(t.Context(), "", intel.Query{Value: "x.example"})
				if !errors.Is(err, upstream.ErrUnavailable) || !strings.Contains(err.Error(), "MISP feed test is not available") {
					t.Errorf("Search on a feed that never loaded: %v", err)
				}
				if s.Ping(t.Context(), "") == nil {
					t.Error("Ping on a feed that never loaded: nil")
				}
				if r := s.Lookup(t.Context(), "", []intel.Query{{Value: "x.example"}}); !errors.Is(r[0].Err, upstream.ErrUnavailable) {
					t.Errorf("Lookup on a feed that never loaded: %+v", r)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.State != feed.Loaded || st.Events != tc.wantEvents || st.Skipped != 3-tc.wantEvents {
				t.Fatalf("status %+v, want %d events", st, tc.wantEvents)
			}
		})
	}

	t.Run("failing refresh keeps the data", func(t *testing.T) {
		files, evs := good()
		fs, srv := newFeedServer(t, files)
		s := newSource(t, srv, feed.Limits{})
		if err := s.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		v := evs[0].Attribute[0].Value
		before := search(t, s, v)
		fs.change(func(f genFeed) { f["manifest.json"] = []byte("garbage") })
		if err := s.Refresh(t.Context()); err == nil {
			t.Fatal("a garbage manifest refreshed")
		}
		if st := s.Status(); st.State != feed.Failing || st.Events != 3 {
			t.Fatalf("status %+v", st)
		}
		if d := cmp.Diff(before, search(t, s, v)); d != "" {
			t.Errorf("the last good data changed:\n%s", d)
		}
		if err := s.Ping(t.Context(), ""); err != nil {
			t.Errorf("Ping with last good data: %v", err)
		}
	})
}

// bombed and fsMu: the gzip bomb case bombs the first event file asked for only.
var (
	fsMu   sync.Mutex
	bombed bool
)

// TestSourceRunBacksOff: Run retries a failing feed after 30s, then 60s, logs the failure
// once and the recovery once, then refreshes every Refresh with conditional requests.
func TestSourceRunBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		files := newGenFeed(t, 9, 2, 3, 100)
		fs := &feedServer{files: files, version: 1, hits: map[string]int{}, gates: map[string]chan struct{}{}}
		fails := 2
		fs.override = func(w http.ResponseWriter, _ *http.Request, name string) bool {
			fsMu.Lock()
			defer fsMu.Unlock()
			if name == "manifest.json" && fails > 0 {
				fails--
				http.Error(w, "down", http.StatusServiceUnavailable)
				return true
			}
			return false
		}
		var logs testkit.SyncBuffer
		s, err := feed.NewSource(feed.SourceConfig{
			Name: "test", Location: "https://feed.test/feed/", Refresh: time.Hour,
			HTTPClient: &http.Client{Transport: testkit.HandlerTransport(fs)},
			Log:        slog.New(slog.NewJSONHandler(&logs, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		synctest.Wait()
		if got := fs.hitsOf("manifest.json"); got != 1 {
			t.Fatalf("manifest asked %d times at start", got)
		}
		testkit.Advance(30 * time.Second)
		if got := fs.hitsOf("manifest.json"); got != 2 {
			t.Fatalf("manifest asked %d times after 30s", got)
		}
		testkit.Advance(59 * time.Second)
		if got := fs.hitsOf("manifest.json"); got != 2 {
			t.Fatalf("manifest asked %d times before the 60s backoff ended", got)
		}
		testkit.Advance(time.Second)
		if st := s.Status(); st.State != feed.Loaded || st.Events != 2 {
			t.Fatalf("after the backoff: %+v", st)
		}
		testkit.Advance(time.Hour)
		if st := s.Status(); st.NotModified != 1 {
			t.Fatalf("an hour later: %+v", st)
		}
		cancel()
		<-done
		out := logs.String()
		if n := strings.Count(out, `"msg":"feed failing`); n != 1 {
			t.Errorf("the failure was logged %d times:\n%s", n, out)
		}
		if n := strings.Count(out, `"msg":"feed recovered"`); n != 1 {
			t.Errorf("the recovery was logged %d times:\n%s", n, out)
		}
		if !strings.Contains(out, `"msg":"feed loaded","feed":"test","events":2,"values":6`) {
			t.Errorf("no load line:\n%s", out)
		}
	})
}

// TestSourceBoundsEventsInFlight: while one event file is slow, the others fetched behind it
// are at most as many as the workers: a slow file cannot make the relay hold the whole feed.
func TestSourceBoundsEventsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		files := newGenFeed(t, 13, 20, 2, 1000)
		var keys []string
		for name := range files {
			if name != "manifest.json" {
				keys = append(keys, name)
			}
		}
		sortStrings(keys)
		fs := &feedServer{files: files, version: 1, hits: map[string]int{}, gates: map[string]chan struct{}{}}
		gate := make(chan struct{})
		fs.gates[keys[0]] = gate
		s, err := feed.NewSource(feed.SourceConfig{
			Name: "test", Location: "https://feed.test/feed/",
			HTTPClient: &http.Client{Transport: testkit.HandlerTransport(fs)},
		})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Refresh(t.Context()) }()
		synctest.Wait()
		asked := 0
		for _, k := range keys {
			asked += fs.hitsOf(k)
		}
		if asked != 4 {
			t.Errorf("%d event files asked while the first is held, want 4 (the workers)", asked)
		}
		close(gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if st := s.Status(); st.Events != 20 || st.Fetched != 20 {
			t.Errorf("after the load: %+v", st)
		}
	})
}

// sampleGenFeed is the sample feed's files.
func sampleGenFeed(t *testing.T) genFeed {
	t.Helper()
	sample := genFeed{}
	entries, err := os.ReadDir(sampleFeed)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(sampleFeed, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sample[e.Name()] = b
	}
	return sample
}

// storeAndSources serves the files of f three ways: a Store loaded from a directory, and
// Sources (not yet loaded) over HTTPS and from that directory.
func storeAndSources(t *testing.T, f genFeed) (store *feed.Store, overHTTPS, fromDir *feed.Source) {
	t.Helper()
	dir := t.TempDir()
	f.writeDir(t, dir)
	store, err := feed.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, srv := newFeedServer(t, f)
	overHTTPS = newSource(t, srv, feed.Limits{})
	fromDir, err = feed.NewSource(feed.SourceConfig{Name: "dir", Location: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	return store, overHTTPS, fromDir
}
