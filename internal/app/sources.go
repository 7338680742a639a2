package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/upstream"
)

// startFeeds builds FEEDS' sources and starts loading them in the background: the relay
// serves at once, lookups answering from what is loaded. stop ends their loads and refreshes
// and waits for them.
func startFeeds(cfg config, userAgent string, log *slog.Logger) (feeds []*feed.Source, stop func() error, err error) {
	client := cfg.feedHTTP
	if client == nil && cfg.caFile != "" && len(cfg.feeds) > 0 {
		// An internal feed may be signed by the internal CA MISP's certificate is.
		roots, err := upstream.ExtraRoots(cfg.caFile)
		if err != nil {
			return nil, nil, fmt.Errorf("MISP_CA_FILE: %w", err)
		}
		client = upstream.NewHTTPClient(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, 4)
	}
	for _, f := range cfg.feeds {
		s, err := feed.NewSource(feed.SourceConfig{
			Name: f.name, Location: f.location, Refresh: cfg.feedRefresh,
			HTTPClient: client, UserAgent: userAgent, Log: log,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("FEEDS: %w", err)
		}
		feeds = append(feeds, s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, s := range feeds {
		log.Info("feed loading", "feed", cfg.feeds[i].name, "location", s.Status().Location, "refresh", cfg.feedRefresh.String())
		wg.Go(func() { s.Run(ctx) })
	}
	return feeds, func() error { cancel(); wg.Wait(); return nil }, nil
}

// FeedStatus says where each of FEEDS' feeds stands (loading, loaded with how many events
// and values, or failing and why), in FEEDS order: for /health and operators.
func (a *App) FeedStatus() []feed.Status {
	out := make([]feed.Status, 0, len(a.feeds))
	for _, f := range a.feeds {
		out = append(out, f.Status())
	}
	return out
}

// feedStates is what /health says of the feeds (service.Config.FeedStates). Why a feed
// fails is left out: its URL and its server's words are the operator's, not every tenant's.
func feedStates(feeds []*feed.Source) []service.FeedState {
	out := make([]service.FeedState, 0, len(feeds))
	for _, f := range feeds {
		st := f.Status()
		out = append(out, service.FeedState{
			Source: st.Name, State: string(st.State), Events: st.Events, Values: st.Values,
			Skipped: st.Skipped, Updated: st.Updated,
		})
	}
	return out
}

// Sources returns what a request with claims c consults, in order: its MISPs, then every
// feed of FEEDS. The MISPs are those the token names (auth.Claims.MISPs): for a
// configuration token, HOST then HOST_2 … HOST_5, each of which must pass
// MISP_ALLOWED_HOSTS as HOST does; for an HS256 token, API_URL's MISP or feed (none without
// API_URL: a relay of public feeds needs no MISP), then the hosts of its "misps" claim, under
// the same rule; with nothing at all to ask, errNoSources. A host refused, or one MISP named twice, fails
// the whole request (as HOST alone did): the token is wrong, not one source down.
//
// Each MISP is the pool's client for its base URL, whose caches (in-process and Redis) are
// keyed by that base URL and the key: one source's entries are never served for another.
// It is service.Config.Sources: the service calls it once per request, where the token is
// checked, and asks the sources concurrently.
func (a *App) Sources(c auth.Claims) ([]intel.Source, error) {
	var out []intel.Source
	seen := map[string]string{} // base URL → the claim naming it
	for i, m := range c.MISPs() {
		claim := "HOST"
		if i > 0 {
			claim = fmt.Sprintf("HOST_%d", i+1)
			if c.Host == "" {
				claim = fmt.Sprintf("misps[%d]", i-1)
			}
		}
		if m.Host == "" {
			if a.own.Backend == nil {
				continue // no API_URL: the feeds, and the token's other MISPs, are asked
			}
			src := a.own
			src.Key = m.Key
			out = append(out, src)
			seen[a.ownBase] = "API_URL"
			continue
		}
		b, base, err := a.pool.get(m.Host)
		if err != nil {
			return nil, err
		}
		if first, dup := seen[base]; dup {
			return nil, &auth.Error{Reason: fmt.Sprintf("%s names the same MISP as %s", claim, first)}
		}
		seen[base] = claim
		_, hostport, _ := mispBase(base) // base came out of mispBase: no error
		out = append(out, intel.Source{Name: "MISP " + hostport, Backend: b, Key: m.Key, UI: base})
	}
	for _, f := range a.feeds {
		out = append(out, intel.Source{Name: f.Name(), Backend: f})
	}
	if len(out) == 0 {
		return nil, errNoSources
	}
	return out, nil
}

// errNoSources is an HS256 token naming no MISP on a relay with neither API_URL nor FEEDS.
var errNoSources = service.ConfigError("The relay has nothing to ask: set API_URL to your MISP base URL (or a MISP feed directory), or FEEDS to public MISP feeds.")
