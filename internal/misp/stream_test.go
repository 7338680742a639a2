package misp_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
)

// TestSearchStopsReadingEarly serves 20,000 attributes of 20,000 events (about 45 MB) and
// checks that a Search with Limit 10 returns 10 events without reading the answer to its
// end. The handler counts the bytes the connection accepted: once the client closes the
// body, writes fail after the socket buffers (a few MB) fill, so a client that reads
// everything makes written == total and the test fails.
func TestSearchStopsReadingEarly(t *testing.T) {
	const n = 20000
	pad := strings.Repeat("x", 2000) // a long ignored field, as sightings or comments are
	item := func(i int) string {
		return fmt.Sprintf(`{"id":"%d","type":"md5","category":"Payload delivery","value":"d41d8cd98f00b204e9800998ecf8427e","to_ids":true,`+
			`"comment":"%s","timestamp":"1624865598","Event":{"uuid":"ev-%05d","info":"event %d","threat_level_id":"2","Orgc":{"name":"ORG"}}}`,
			i, pad, i, i)
	}
	const head, tail = `{"response":{"Attribute":[`, `]}}`
	total := int64(len(head) + len(tail))
	for i := range n {
		total += int64(len(item(i)))
		if i > 0 {
			total++
		}
	}

	var written atomic.Int64
	done := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Type", "application/json")
		write := func(s string) bool {
			k, err := w.Write([]byte(s))
			written.Add(int64(k))
			return err == nil
		}
		if !write(head) {
			return
		}
		for i := range n {
			sep := ""
			if i > 0 {
				sep = ","
			}
			if !write(sep + item(i)) {
				return
			}
		}
		write(tail)
	})

	c := newClient(t, srv.URL, func(cfg *misp.Config) { cfg.PageSize = n + 1 }) // only the event cap can stop reading
	events, err := c.Search(context.Background(), testKey, intel.Query{Value: "d41d8cd98f00b204e9800998ecf8427e", Limit: 10})
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	if len(events) != 10 {
		t.Fatalf("got %d events, want 10", len(events))
	}
	for i, e := range events {
		if want := fmt.Sprintf("ev-%05d", i); e.UUID != want || len(e.Attributes) != 1 {
			t.Errorf("event %d = %s with %d attributes, want %s with 1", i, e.UUID, len(e.Attributes), want)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler is still writing 5s after Search returned: the client did not close the body")
	}
	if w := written.Load(); w >= total/2 {
		t.Errorf("the server wrote %d of %d bytes: the client read far past the 10th event", w, total)
	}
}

// fixturesDir is the shared fixtures directory, present when the repository is cloned next
// to shared/ (as in CI); the test that needs it skips otherwise.
const fixturesDir = "../../../shared/fixtures"

// TestSearchRealFixtures serves real MISP attributes restSearch answers verbatim.
func TestSearchRealFixtures(t *testing.T) {
	if _, err := os.Stat(fixturesDir); err != nil {
		t.Skipf("shared fixtures not available: %v", err)
	}
	loki := []string{
		"misp-galaxy:malpedia=Loki", "misp-galaxy:mitre-malware=S0266", "Recorded Future",
		"osint:source-type=technical-report", "tlp:white", "Phishing", "misp-galaxy:target-information=United States",
		"COVID-19", "misp-galaxy:mitre-malware=S0331", "misp-galaxy:target-information=China",
		"misp-galaxy:target-information=Iran", "misp-galaxy:target-information=Italy",
		"misp-galaxy:target-information=Ukraine",
	}
	const md5 = "6c73d338ec64e0e44bd54ea61b6988b2"
	const ddos = "DDOS.TF = (new) ELF & Win32 DDoS service with ASP + PHP/MySQL MOF webshells - MMD-0048-2016"
	tests := []struct {
		file string
		want []intel.Event
	}{
		{
			file: "misp_attributes_restsearch_context_sightings.json",
			want: []intel.Event{
				{
					UUID: "5e6b322a-9f80-4e2f-9f2a-3cab0a3b4631", Info: "Capitalizing on Coronavirus Panic, Threat Actors Target Victims Worldwide",
					Date: "2020-03-13", Timestamp: time.Unix(1624893849, 0).UTC(), ThreatLevel: 1, Org: "CERT.be", Tags: loki,
					Attributes: []intel.Attribute{{Type: "md5", Category: "Payload delivery", Value: md5, ToIDS: true, Timestamp: time.Unix(1624865598, 0).UTC()}},
				},
				{
					UUID: "590c76a9-0bac-4d1e-b8af-416ac0a8ab16", Info: "Snake: Coming soon in Mac OS X flavour",
					Date: "2017-05-03", Timestamp: time.Unix(1624865619, 0).UTC(), ThreatLevel: 3, Org: "CUDESO",
					Tags:       []string{"tlp:white", "misp-galaxy:mitre-attack-pattern=T1103"},
					Attributes: []intel.Attribute{{Type: "md5", Category: "Payload delivery", Value: md5, ToIDS: true, Timestamp: time.Unix(1624279888, 0).UTC()}},
				},
				{
					UUID: "56d76936-0d34-44ff-a8c5-5280c0a8ab16", Info: ddos,
					Date: "2016-01-04", Timestamp: time.Unix(1624865583, 0).UTC(), ThreatLevel: 2, Org: "CUDESO",
					Tags:       []string{"tlp:white"},
					Attributes: []intel.Attribute{{Type: "md5", Category: "Payload delivery", Value: md5, Timestamp: time.Unix(1624865583, 0).UTC()}},
				},
			},
		},
		{
			// Without includeContext the Event block is short: no threat level, no Orgc.
			file: "misp_attributes_restsearch_md5_minimal.json",
			want: []intel.Event{{
				UUID: "56d76936-0d34-44ff-a8c5-5280c0a8ab16", Info: ddos,
				Attributes: []intel.Attribute{
					{Type: "md5", Category: "Payload delivery", Value: "71a868cdcc6b79b7d274e3b558cd4596", ToIDS: true, Timestamp: time.Unix(1456957949, 0).UTC()},
					{Type: "md5", Category: "Payload delivery", Value: "3e0d96cd1e0a97e61d96b7863f39a1d4", ToIDS: true, Timestamp: time.Unix(1456957949, 0).UTC()},
				},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(fixturesDir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			srv := newServer(t, answer(http.StatusOK, "application/json", string(body)))
			got, err := newClient(t, srv.URL).Search(context.Background(), testKey, intel.Query{Value: md5, Types: []string{"md5"}, Limit: 10})
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, ignoreEvidence); diff != "" {
				t.Errorf("Search (-want +got):\n%s", diff)
			}
		})
	}
}
