package misp_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
	"github.com/misp-relay/misp-relay/internal/testkit"
)

// TestSearchStopsReadingEarly serves 20,000 attributes of 20,000 events (about 45 MB) and
// checks that a Search with Limit 10 returns 10 events without reading the answer to its
// end. The fake MISP counts the bytes the connection accepted: once the client closes the
// body, writes fail after the socket buffers (a few MB) fill, so a client that reads
// everything makes the count reach the total and the test fails.
func TestSearchStopsReadingEarly(t *testing.T) {
	const n = 20000
	pad := strings.Repeat("x", 2000) // a long ignored field, as sightings or comments are
	var answer strings.Builder
	answer.Grow(n * (len(pad) + 300))
	answer.WriteString(`{"response":{"Attribute":[`)
	for i := range n {
		if i > 0 {
			answer.WriteByte(',')
		}
		// Written piece by piece: formatting 45 MB with fmt is slow under the race detector.
		id := strconv.Itoa(i)
		answer.WriteString(`{"id":"` + id + `","type":"md5","category":"Payload delivery","value":"d41d8cd98f00b204e9800998ecf8427e","to_ids":true,"comment":"`)
		answer.WriteString(pad)
		answer.WriteString(`","timestamp":"1624865598","Event":{"uuid":"` + fmt.Sprintf("ev-%05d", i) + `","info":"event ` + id + `","threat_level_id":"2","Orgc":{"name":"ORG"}}}`)
	}
	answer.WriteString(`]}}`)
	total := int64(answer.Len())
	srv := answering(t, misptest.Raw(http.StatusOK, "application/json", answer.String()))

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
	if err := srv.WaitAnswers(testkit.Context(t), "", 1); err != nil {
		t.Fatalf("the fake MISP is still writing %v after Search returned: the client did not close the body", testkit.WaitTimeout)
	}
	if w := srv.Requests()[0].Sent; w >= total/2 {
		t.Errorf("the server wrote %d of %d bytes: the client read far past the 10th event", w, total)
	}
}

// TestSearchRealFixtures serves real MISP attributes restSearch answers verbatim
// (testdata/README.md).
func TestSearchRealFixtures(t *testing.T) {
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
			body, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			srv := answering(t, misptest.Raw(http.StatusOK, "application/json", string(body)))
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
