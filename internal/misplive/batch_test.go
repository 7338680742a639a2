//go:build misplive

package misplive

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
)

// mispTypes are the attribute types the relay searches for each observable type (the table of
// internal/service/observables.go, written out: this test checks MISP, not that table).
var mispTypes = map[string][]string{
	"ip":        {"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip"},
	"ipv6":      {"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip"},
	"domain":    {"domain", "domain|ip", "hostname", "hostname|port"},
	"hostname":  {"domain", "domain|ip", "hostname", "hostname|port"},
	"url":       {"url", "uri", "link"},
	"md5":       {"md5", "filename|md5", "malware-sample"},
	"sha1":      {"sha1", "filename|sha1"},
	"sha256":    {"sha256", "filename|sha256"},
	"sha512":    {"sha512", "filename|sha512"},
	"email":     {"email", "email-src", "email-dst", "target-email", "whois-registrant-email"},
	"file_name": {"filename", "filename|md5", "filename|sha1", "filename|sha256", "filename|sha512", "malware-sample"},
}

// testBatchAsAlone checks MISP's list semantics as the relay relies on them: one restSearch
// with every seeded value as a list (exact matches, composite halves, letter case, IPv6
// spellings, each value's type filter, paging (a page size of 1, so a batch of 40 values reads pages of 40 attributes) gives each value
// the events it gets asked alone, with the same attributes.
func testBatchAsAlone(t *testing.T, api *mispAPI) {
	c, err := misp.New(misp.Config{BaseURL: api.base, Timeout: time.Minute, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	var qs []intel.Query
	for _, e := range expectations {
		qs = append(qs, intel.Query{Value: e.obs.Value, Types: mispTypes[e.obs.Type], Limit: 2})
	}
	qs = append(qs, intel.Query{Value: "c2.relay-test.example", Types: mispTypes["domain"], Limit: 1})
	ctx := context.Background()
	batch := c.Lookup(ctx, api.key, qs)
	found := 0
	for i, q := range qs {
		alone, err := c.Search(ctx, api.key, q)
		if err != nil || batch[i].Err != nil {
			t.Fatalf("%s: alone %v, in the batch %v", q.Value, err, batch[i].Err)
		}
		if diff := cmp.Diff(ours(alone), ours(batch[i].Events)); diff != "" {
			t.Errorf("%s: the batch's answer differs from the answer alone (-alone +batch):\n%s", q.Value, diff)
		}
		if len(alone) > 0 {
			found++
		}
	}
	if found < len(qs)-3 {
		t.Errorf("only %d of %d values found: the comparison says little", found, len(qs))
	}
}

// ours keeps the events of the suite (a MISP may hold others with the same values, which
// both answers hold alike) as what the comparison needs: UUID and matched attributes' UUIDs.
func ours(events []intel.Event) [][]string {
	var out [][]string
	for _, e := range events {
		row := []string{e.UUID}
		for _, a := range e.Attributes {
			row = append(row, a.UUID)
		}
		out = append(out, row)
	}
	return out
}
