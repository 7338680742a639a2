package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/upstream"
)

// A Source is a MISP feed the relay consults beside a tenant's MISP (FEEDS): published over
// HTTPS (a directory with manifest.json and one <event uuid>.json per event, as MISP's feed
// export and PyMISP write them) or in a local directory. Unlike a Store it is loaded in the
// background, so the relay serves at once and lookups answer from what is loaded so far, and
// it is refreshed: manifest.json is asked again with If-None-Match / If-Modified-Since, and
// only events that are new or whose manifest timestamp changed are fetched. A failed refresh
// keeps the last good data.
//
// Everything a feed sends is capped (Limits): a feed answering garbage, too much, or a
// redirect to another host is a failing feed, never a crash or unbounded memory. Its index is
// compact (see index.go), so a feed the size of CIRCL's OSINT feed fits a small container.
//
// A Source is an intel.Backend (the key is ignored: a feed has no users) and safe for
// concurrent use.
type Source struct {
	cfg   SourceConfig
	name  string // "MISP feed <name>"
	fetch fetcher
	seed  maphash.Seed
	log   *slog.Logger

	snap atomic.Pointer[snapshot]

	refreshMu sync.Mutex // one load or refresh at a time; guards what follows
	names     interner
	manifest  validators         // of the last manifest fully applied; zero forces a full read
	current   map[string]*stored // by lower-case uuid, the events of snap

	statusMu sync.Mutex
	status   Status
}

// SourceConfig configures a Source.
type SourceConfig struct {
	// Name is the feed's name in FEEDS ("circl"); the source is "MISP feed <Name>".
	Name string
	// Location is an https:// (or http://) URL of the feed's directory, a file:// URL or a
	// local directory.
	Location string
	// Refresh is how often Run asks for a new manifest (FEED_REFRESH); default DefaultRefresh.
	Refresh time.Duration
	// HTTPClient fetches the feed; nil means the relay's usual upstream client. Redirects
	// are followed only on the feed's own host, whatever the client says.
	HTTPClient *http.Client
	// Timeout bounds one file's fetch; default DefaultFetchTimeout.
	Timeout time.Duration
	// UserAgent is sent with every request; default "misp-relay".
	UserAgent string
	// Limits cap what the feed may send; zero fields take the defaults.
	Limits Limits
	// Log receives load, refresh and failure lines; nil discards.
	Log *slog.Logger
	// Now is the clock of Status; nil means time.Now.
	Now func() time.Time
}

// Limits cap what one feed may make the relay hold.
type Limits struct {
	ManifestBytes int64 // manifest.json after decompression; default 16 MiB
	EventBytes    int64 // one event file after decompression; default 32 MiB
	Events        int   // events listed in the manifest; default 50,000
	Values        int   // attribute values indexed; default 2,000,000
}

// Defaults of SourceConfig.
const (
	DefaultRefresh       = time.Hour
	DefaultFetchTimeout  = 2 * time.Minute
	DefaultManifestBytes = 16 << 20
	DefaultEventBytes    = 32 << 20
	DefaultMaxEvents     = 50_000
	DefaultMaxValues     = 2_000_000
	// fetchWorkers bounds the event files fetched (and held while parsed) at once.
	fetchWorkers = 4
	// retryFirst is the first wait after a failed load or refresh; it doubles up to Refresh.
	retryFirst = 30 * time.Second
)

// State is where a Source stands.
type State string

// States of a Source.
const (
	Loading State = "loading" // the first load has not finished
	Loaded  State = "loaded"  // the last load or refresh succeeded (perhaps skipping events: see Skipped)
	Failing State = "failing" // the last attempt failed; the last good data (if any) is still served
)

// Status is what /health and the logs say about a feed.
type Status struct {
	Name     string // "MISP feed circl"
	Location string // without credentials
	State    State
	Events   int // events served
	Values   int // attribute values indexed
	// Skipped are the events of the manifest not served: unreadable, over a cap, or past
	// the value cap. Their errors are logged.
	Skipped int
	// Error is why the last attempt failed; "" unless State is Failing.
	Error string
	// Updated is when the data served last changed; Checked when the manifest was last read
	// (or found unchanged). Zero before the first.
	Updated, Checked time.Time
	// NotModified counts manifest requests answered "not modified" (304); Fetched counts
	// event files fetched.
	NotModified, Fetched int
}

// NewSource checks cfg and returns a Source that has loaded nothing yet: call Run (or Refresh).
func NewSource(cfg SourceConfig) (*Source, error) {
	if cfg.Name == "" {
		return nil, errors.New("feed: a feed needs a name")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultFetchTimeout
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "misp-relay"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &cfg.Limits
	l.ManifestBytes = orDefault(l.ManifestBytes, DefaultManifestBytes)
	l.EventBytes = orDefault(l.EventBytes, DefaultEventBytes)
	l.Events = orDefault(l.Events, DefaultMaxEvents)
	l.Values = orDefault(l.Values, DefaultMaxValues)
	f, err := newFetcher(cfg)
	if err != nil {
		return nil, err
	}
	s := &Source{
		cfg: cfg, name: "MISP feed " + cfg.Name, fetch: f, seed: maphash.MakeSeed(),
		log: cfg.Log.With("feed", cfg.Name), current: map[string]*stored{},
	}
	s.status = Status{Name: s.name, Location: f.where(), State: Loading}
	return s, nil
}

func orDefault[T int | int64](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// newFetcher reads cfg.Location: an http(s) URL, a file:// URL or a directory.
func newFetcher(cfg SourceConfig) (fetcher, error) {
	loc := strings.TrimSpace(cfg.Location)
	if strings.HasPrefix(loc, "https://") || strings.HasPrefix(loc, "http://") {
		u, err := url.Parse(loc)
		if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("feed %s: %q is not a feed URL such as https://www.circl.lu/doc/misp/feed-osint/", cfg.Name, redactLocation(loc))
		}
		return newHTTPFetcher(u, cfg.HTTPClient, cfg.UserAgent, cfg.Timeout), nil
	}
	if strings.Contains(loc, "://") && !strings.HasPrefix(loc, "file://") {
		return nil, fmt.Errorf("feed %s: %q: a feed is an https:// URL, a file:// URL or a directory", cfg.Name, redactLocation(loc))
	}
	dir := strings.TrimPrefix(loc, "file://")
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("feed %s: %w", cfg.Name, fileError(dir, err))
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("feed %s: %s is not a directory", cfg.Name, dir)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return dirFetcher{dir: dir}, nil
}

// redactLocation hides what may be a credential in a location that failed to parse.
func redactLocation(s string) string {
	if u, err := url.Parse(s); err == nil {
		return redactURL(u)
	}
	return "(unreadable URL)"
}

var _ intel.Backend = (*Source)(nil)

// Name is the source's name in answers, logs and errors: "MISP feed <name>".
func (s *Source) Name() string { return s.name }

// Status says where the feed stands.
func (s *Source) Status() Status {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	return s.status
}

func (s *Source) setStatus(f func(*Status)) {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	f(&s.status)
}

// Run loads the feed, then refreshes it every Refresh until ctx ends. A failed attempt is
// logged once (then at debug level until one succeeds) and retried after 30s, doubling up to
// Refresh.
func (s *Source) Run(ctx context.Context) {
	failures := 0
	for {
		err := s.refreshGuarded(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := s.cfg.Refresh
		switch {
		case err != nil:
			failures++
			level := slog.LevelWarn
			if failures > 1 {
				level = slog.LevelDebug
			}
			wait = min(s.cfg.Refresh, retryFirst<<min(failures-1, 16))
			s.log.Log(ctx, level, "feed failing: keeping the last good data", "error", err.Error(), "retry_in", wait.String(), "failures", failures)
		case failures > 0:
			s.log.Info("feed recovered", "after_failures", failures)
			failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// refreshGuarded is Refresh, a panic (a bug a feed's bytes found) turned into a failed attempt:
// Run's goroutine is not a request's, and a panic there would stop the relay.
func (s *Source) refreshGuarded(ctx context.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%s: panic while loading: %v", s.name, v)
			s.log.Error("feed load panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			s.setStatus(func(st *Status) { st.State, st.Error = Failing, err.Error() })
		}
	}()
	return s.Refresh(ctx)
}

// manifestEntry is one event of a manifest: its key and what tells it changed.
type manifestEntry struct {
	key   string // as written: the file name
	stamp string
}

// parseManifest reads a manifest's keys (checked UUIDs, at most limit) and their timestamps;
// an entry without one is told apart by its hash under seed, the Source's, stable for its life.
func parseManifest(b []byte, where string, limit int, seed maphash.Seed) (map[string]manifestEntry, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%s/manifest.json: not a MISP feed manifest: want a JSON object keyed by event UUID", where)
	}
	if len(m) > limit {
		return nil, fmt.Errorf("%s/manifest.json lists %d events, more than the %d the relay accepts", where, len(m), limit)
	}
	out := make(map[string]manifestEntry, len(m))
	for k, raw := range m {
		if !intel.CanonicalUUID(k) {
			return nil, fmt.Errorf("%s/manifest.json: key %q is not an event UUID", where, printable(k))
		}
		lk := strings.ToLower(k)
		if _, dup := out[lk]; dup {
			return nil, fmt.Errorf("%s/manifest.json: event %s is listed twice", where, lk)
		}
		var e struct {
			Timestamp json.RawMessage `json:"timestamp"`
		}
		stamp := ""
		if json.Unmarshal(raw, &e) == nil && len(e.Timestamp) > 0 && string(e.Timestamp) != "null" {
			stamp = strings.Trim(string(e.Timestamp), `"`)
		} else {
			// No timestamp: any change of the entry counts as a change of the event.
			stamp = "entry:" + strconv.FormatUint(maphash.Bytes(seed, raw), 16)
		}
		out[lk] = manifestEntry{key: k, stamp: stamp}
	}
	return out, nil
}

// printable cuts s to 64 bytes and replaces control characters, for an error about a feed.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// Refresh makes one load or refresh: it asks for manifest.json (conditionally once one was
// read), fetches the events that are new or changed, drops those gone from it, and swaps the
// result in. Lookups keep being answered meanwhile: during the first load, from the events
// loaded so far. An error means the manifest could not be read: the data served is unchanged.
// Events that fail alone are skipped (an older version of them is kept), logged and counted
// in Status, and asked again at the next refresh.
func (s *Source) Refresh(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	start := s.cfg.Now()
	err := s.refresh(ctx)
	if err != nil {
		s.setStatus(func(st *Status) { st.State, st.Error = Failing, err.Error() })
		return err
	}
	s.setStatus(func(st *Status) { st.State, st.Error, st.Checked = Loaded, "", start })
	return nil
}

func (s *Source) refresh(ctx context.Context) error {
	where := s.fetch.where()
	mf, err := s.fetch.get(ctx, "manifest.json", s.cfg.Limits.ManifestBytes, s.manifest)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	if mf.notModified {
		s.setStatus(func(st *Status) { st.NotModified++ })
		s.log.Debug("feed unchanged", "events", len(s.current))
		return nil
	}
	entries, err := parseManifest(mf.body, where, s.cfg.Limits.Events, s.seed)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	mf.body = nil

	// What changes: events gone are dropped at once; new and changed ones are fetched.
	next := make(map[string]*stored, len(entries))
	var todo []manifestEntry
	dropped := 0
	for lk, old := range s.current {
		if _, ok := entries[lk]; !ok {
			dropped++
			continue
		}
		next[lk] = old
	}
	for lk, e := range entries {
		if old, ok := next[lk]; ok && old.stamp == e.stamp {
			continue
		}
		todo = append(todo, e)
	}
	// A manifest is a JSON object, read into a map: fetch in key order, so loads reproduce.
	sortEntries(todo)

	values := 0
	for _, ev := range next {
		values += ev.n
	}
	var (
		skipped  int
		firstErr error
		fetched  int
	)
	publishAt, i := 1, 0
	for r := range s.fetchEvents(ctx, todo) {
		i++
		lk := strings.ToLower(r.entry.key)
		var ev *stored
		if r.err == nil {
			ev, r.err = s.encode(r.parsed, r.entry.stamp)
			r.parsed = event{}
		}
		if r.err == nil {
			fetched++
			// The value cap counts what would be served: the event's old version leaves.
			if old := next[lk]; old != nil {
				values -= old.n
			}
			if values+ev.n > s.cfg.Limits.Values {
				r.err = fmt.Errorf("%s: event %s: the feed would index more than %d values", s.name, lk, s.cfg.Limits.Values)
				if old := next[lk]; old != nil {
					values += old.n
				}
			} else {
				values += ev.n
				next[lk] = ev
			}
		}
		if r.err != nil {
			skipped++
			if firstErr == nil {
				firstErr = r.err
			}
			s.log.Debug("feed event skipped", "error", r.err.Error())
		}
		// During the first load, serve what is ready: publishing after 1, 2, 4, 8... events
		// keeps the total indexing work within twice that of one final build.
		if s.snap.Load() == nil || len(s.current) == 0 {
			if i == publishAt {
				s.publish(next, false)
				publishAt *= 2
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err // stopped mid-way: what was fetched is not applied
	}
	if skipped > 0 {
		s.log.Warn("feed events skipped", "skipped", skipped, "first_error", firstErr.Error())
		// Asked again at the next refresh: the manifest must not count as applied.
		s.manifest = validators{}
	} else {
		s.manifest = mf.version
	}
	changed := len(todo) > 0 || dropped > 0 || s.snap.Load() == nil
	s.setStatus(func(st *Status) { st.Skipped, st.Fetched = skipped, st.Fetched+fetched })
	if changed {
		sn := s.publish(next, true)
		s.log.Info("feed loaded", "events", len(sn.events), "values", sn.values, "fetched", fetched, "dropped", dropped, "skipped", skipped)
	}
	return nil
}

// publish swaps in a snapshot of events; final makes them the current set.
func (s *Source) publish(events map[string]*stored, final bool) *snapshot {
	list := make([]stored, 0, len(events))
	for _, ev := range events {
		list = append(list, *ev)
	}
	sn := newSnapshot(list, s.names.names, s.seed)
	s.snap.Store(sn)
	if final {
		s.current = events
	}
	now := s.cfg.Now()
	s.setStatus(func(st *Status) { st.Events, st.Values, st.Updated = len(sn.events), sn.values, now })
	return sn
}

func sortEntries(es []manifestEntry) {
	slices.SortFunc(es, func(a, b manifestEntry) int {
		return strings.Compare(strings.ToLower(a.key), strings.ToLower(b.key))
	})
}

// fetchResult is one event fetched and parsed, or why not.
type fetchResult struct {
	entry  manifestEntry
	parsed event
	err    error
}

// fetchEvents fetches and parses todo's events, fetchWorkers at a time (and at most that many
// held before they are delivered), delivering them in order on the channel it returns, closed
// when done or when ctx ends. Parsing happens in the workers; records are encoded by the
// caller (see encode).
func (s *Source) fetchEvents(ctx context.Context, todo []manifestEntry) <-chan fetchResult {
	type parsed struct {
		ev  event
		err error
	}
	slots := make([]chan parsed, len(todo))
	for i := range slots {
		slots[i] = make(chan parsed, 1)
	}
	out := make(chan fetchResult)
	next := make(chan int)
	// window bounds the events fetched or parsed but not yet delivered: without it, one slow
	// event file would let the workers pile up the rest of the feed, parsed, behind it.
	window := make(chan struct{}, fetchWorkers)
	go func() {
		defer close(next)
		for i := range todo {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range min(fetchWorkers, len(todo)) {
		go func() {
			for i := range next {
				e := todo[i]
				f, err := s.fetch.get(ctx, e.key+".json", s.cfg.Limits.EventBytes, validators{})
				if err != nil {
					slots[i] <- parsed{err: fmt.Errorf("%s: event %s: %w", s.name, e.key, err)}
					continue
				}
				ev, err := parseEvent(f.body, s.fetch.where()+"/"+e.key+".json", e.key)
				slots[i] <- parsed{ev: ev, err: err}
			}
		}()
	}
	go func() {
		defer close(out)
		for i, e := range todo {
			var p parsed
			select {
			case p = <-slots[i]:
				<-window
			case <-ctx.Done():
				return
			}
			r := fetchResult{entry: e, parsed: p.ev, err: p.err}
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// encode turns a parsed event into records. It runs under refreshMu, in the goroutine that
// publishes snapshots: the interner is not locked.
func (s *Source) encode(ev event, stamp string) (*stored, error) {
	st := &stored{meta: ev.meta, stamp: stamp, n: len(ev.attrs)}
	size := 0
	for i := range ev.attrs {
		size += len(ev.attrs[i].Value) + 48
	}
	st.recs = make([]byte, 0, size)
	for i := range ev.attrs {
		var err error
		if st.recs, err = appendRecord(st.recs, &s.names, &ev.attrs[i]); err != nil {
			return nil, fmt.Errorf("%s: event %s: %w", s.name, ev.meta.UUID, err)
		}
	}
	// Trim the estimate: the buffer lives as long as the event.
	st.recs = append([]byte(nil), st.recs...)
	return st, nil
}

// Search answers q from the feed as loaded so far (nothing before the first events are): the
// answer MISP's events restSearch would give, as Store.Search documents. A feed that has
// never loaded and whose last attempt failed answers an upstream.ErrUnavailable error naming
// it. The key is ignored.
func (s *Source) Search(ctx context.Context, _ string, q intel.Query) ([]intel.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sn := s.snap.Load()
	if sn == nil {
		return nil, s.notReady()
	}
	return sn.search(ctx, q)
}

// Lookup answers each query as Search does, all from one snapshot: a refresh swapped in
// meanwhile does not split a request's answers between two versions of the feed.
func (s *Source) Lookup(ctx context.Context, _ string, qs []intel.Query) []intel.Result {
	out := make([]intel.Result, len(qs))
	sn := s.snap.Load()
	for i, q := range qs {
		switch {
		case ctx.Err() != nil:
			out[i].Err = ctx.Err()
		case sn == nil:
			out[i].Err = s.notReady()
		default:
			out[i].Events, out[i].Err = sn.search(ctx, q)
		}
	}
	return out
}

// notReady is nil while the first load runs, and an error once it failed.
func (s *Source) notReady() error {
	st := s.Status()
	if st.State != Failing {
		return nil
	}
	return &upstream.Error{
		Summary: st.Name + " is not available", Op: "search", Kind: upstream.ErrUnavailable,
		Detail: "the feed could not be loaded: " + upstream.Truncate(st.Error, 300),
	}
}

// Ping is nil once the feed has data or while it loads; an error when it never loaded.
func (s *Source) Ping(context.Context, string) error {
	if s.snap.Load() != nil {
		return nil
	}
	return s.notReady()
}

// AddSighting fails with intel.ErrReadOnly: a feed is a published file, not a MISP to write to.
func (s *Source) AddSighting(context.Context, string, string, intel.SightingType, string) error {
	return intel.ErrReadOnly
}

// Writable is false: see AddSighting.
func (s *Source) Writable() bool { return false }
