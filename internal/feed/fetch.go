package feed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/misp-relay/misp-relay/internal/upstream"
)

// fetcher reads the files of a feed (manifest.json, <uuid>.json) from where it is published.
type fetcher interface {
	// get returns the file name, at most limit bytes of it (after decompression), or
	// errTooLarge. With a non-zero since, a file unchanged since then is notModified and
	// has no body. The returned validators say which version was read.
	get(ctx context.Context, name string, limit int64, since validators) (fetched, error)
	// where names the feed for logs and errors, without credentials.
	where() string
}

// validators identify a version of a file: HTTP's ETag and Last-Modified, or a local file's
// modification time and size.
type validators struct {
	etag, lastModified string
}

func (v validators) zero() bool { return v == validators{} }

type fetched struct {
	body        []byte
	notModified bool
	version     validators
}

// errTooLarge is a file over its cap: a feed answering it is broken or hostile.
var errTooLarge = errors.New("larger than the relay accepts")

// readCapped reads at most limit bytes of r, failing with errTooLarge past them.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w (%d bytes)", errTooLarge, limit)
	}
	return b, nil
}

// httpFetcher reads a feed published over HTTPS (or HTTP, the operator's choice).
type httpFetcher struct {
	base      *url.URL // ends with "/"
	client    *http.Client
	userAgent string
	timeout   time.Duration
}

// newHTTPFetcher returns a fetcher of the feed at base. Redirects are followed only on the
// feed's own scheme and host: a feed that sends the relay elsewhere is a failing feed. client
// nil means the relay's usual upstream client (HTTPS_PROXY honoured).
func newHTTPFetcher(base *url.URL, client *http.Client, userAgent string, timeout time.Duration) *httpFetcher {
	if client == nil {
		client = upstream.NewHTTPClient(nil, 4)
	}
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		switch {
		case len(via) >= 5:
			return errors.New("more than 5 redirects")
		case req.URL.Scheme != base.Scheme || !strings.EqualFold(req.URL.Host, base.Host):
			return fmt.Errorf("redirect to %s, off the feed's host %s: not followed", redactURL(req.URL), base.Host)
		}
		return nil
	}
	b := *base
	if !strings.HasSuffix(b.Path, "/") {
		b.Path += "/"
		b.RawPath = ""
	}
	return &httpFetcher{base: &b, client: &c, userAgent: userAgent, timeout: timeout}
}

func (f *httpFetcher) where() string { return redactURL(f.base) }

func (f *httpFetcher) get(ctx context.Context, name string, limit int64, since validators) (fetched, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	u := f.base.JoinPath(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fetched{}, err
	}
	req.Header.Set("User-Agent", f.userAgent)
	req.Header.Set("Accept", "application/json")
	if since.etag != "" {
		req.Header.Set("If-None-Match", since.etag)
	}
	if since.lastModified != "" {
		req.Header.Set("If-Modified-Since", since.lastModified)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		// url.Error repeats the URL, credentials included: say it once, redacted.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fetched{}, fmt.Errorf("%s: %w", redactURL(u), err)
	}
	defer func() { _ = resp.Body.Close() }()
	switch {
	case resp.StatusCode == http.StatusNotModified && !since.zero():
		return fetched{notModified: true, version: since}, nil
	case resp.StatusCode != http.StatusOK:
		return fetched{}, fmt.Errorf("%s: HTTP %d", redactURL(u), resp.StatusCode)
	}
	// The transport asked for gzip itself and decompresses: the cap counts decompressed bytes.
	body, err := readCapped(resp.Body, limit)
	if err != nil {
		return fetched{}, fmt.Errorf("%s: %w", redactURL(u), err)
	}
	return fetched{body: body, version: validators{etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified")}}, nil
}

// redactURL is u without user info or query, which may hold credentials.
func redactURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment = nil, "", false, ""
	return c.String()
}

// dirFetcher reads a feed from a local directory. A manifest whose modification time and
// size are those of the last read counts as not modified, as a 304 would.
type dirFetcher struct{ dir string }

func (f dirFetcher) where() string { return f.dir }

func (f dirFetcher) get(_ context.Context, name string, limit int64, since validators) (fetched, error) {
	path := filepath.Join(f.dir, name)
	// os.Root keeps the read inside dir, symlinks included; names are checked UUIDs anyway.
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		return fetched{}, fileError(f.dir, err)
	}
	defer func() { _ = root.Close() }()
	file, err := root.Open(name)
	if err != nil {
		return fetched{}, fileError(path, err)
	}
	defer func() { _ = file.Close() }()
	info, err := file.Stat()
	if err != nil {
		return fetched{}, fileError(path, err)
	}
	if !info.Mode().IsRegular() {
		return fetched{}, fmt.Errorf("feed: %s: %w", path, fs.ErrInvalid)
	}
	v := validators{lastModified: fmt.Sprintf("%s/%d", info.ModTime().UTC().Format(time.RFC3339Nano), info.Size())}
	if !since.zero() && v == since {
		return fetched{notModified: true, version: v}, nil
	}
	body, err := readCapped(file, limit)
	if err != nil {
		return fetched{}, fmt.Errorf("feed: %s: %w", path, err)
	}
	return fetched{body: body, version: v}, nil
}
