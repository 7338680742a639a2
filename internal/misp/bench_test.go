package misp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/misp"
	"github.com/misp-relay/misp-relay/internal/misp/misptest"
)

// BenchmarkSearch is the cost of one lookup through the real client (HTTP on loopback,
// streaming decode, grouping), for answers of several shapes: the real fixture, the load
// benchmark's synthetic answer, answers whose attributes carry all the evidence the relay asks
// for, and one popular value with thousands of sightings.
//
//	go test -run '^$' -bench . -benchmem ./internal/misp/
func BenchmarkSearch(b *testing.B) {
	fixture, err := os.ReadFile("testdata/misp_attributes_restsearch_context_sightings.json")
	if err != nil {
		b.Fatal(err)
	}
	serve := func(body []byte) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}))
		b.Cleanup(srv.Close)
		return srv.URL
	}
	generated := httptest.NewServer(misptest.NewGenerated(misptest.GeneratedOptions{Key: testKey, Events: 3, Attributes: 2}))
	b.Cleanup(generated.Close)
	md5 := intel.Query{Value: "6c73d338ec64e0e44bd54ea61b6988b2", Types: []string{"md5"}, Limit: 200}
	ip := intel.Query{Value: "198.51.100.7", Types: []string{"ip-dst"}, Limit: 200}
	tests := []struct {
		name   string
		url    string
		q      intel.Query
		events int
	}{
		{"fixture", serve(fixture), md5, 3},
		{"generated-3x2", generated.URL, ip, 3},
		{"evidence-60x3", serve(evidenceAnswer(60, 3, 5)), ip, 60},
		{"sightings-3000", serve(evidenceAnswer(1, 1, 3000)), ip, 1},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			c, err := misp.New(misp.Config{BaseURL: tt.url, Timeout: 5 * time.Second, UserAgent: "misp-relay-bench/1.0"})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				events, err := c.Search(context.Background(), testKey, tt.q)
				if err != nil || len(events) != tt.events {
					b.Fatalf("%d events, err %v; want %d", len(events), err, tt.events)
				}
			}
		})
	}
}

// evidenceAnswer is a restSearch answer of events × attributes attributes of 198.51.100.7 with
// what includeContext, includeEventTags, includeWarninglistHits, includeSightings and
// includeDecayScore add: three event tags (inherited on each attribute), two own tags, one
// warninglist hit, two decay scores and the given number of sightings of mixed types.
func evidenceAnswer(events, attributes, sightings int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"response":{"Attribute":[`)
	eventTags := `{"id":"1","name":"tlp:amber","colour":"#FFC000","exportable":true},{"id":"2","name":"misp-galaxy:threat-actor=\"APT1\"","colour":"#0088cc","exportable":true},{"id":"3","name":"type:OSINT","colour":"#004646","exportable":true}`
	inherited := strings.ReplaceAll(eventTags, `"exportable":true`, `"exportable":true,"inherited":1`)
	for e := range events {
		for a := range attributes {
			if e+a > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"id":"%d","event_id":"%d","object_id":"0","object_relation":null,"category":"Network activity","type":"ip-dst","to_ids":true,`+
				`"uuid":"5e6b336e-5224-445f-b1b3-%012d","timestamp":"1624865598","distribution":"5","sharing_group_id":"0","comment":"C2 of the loader",`+
				`"deleted":false,"disable_correlation":false,"first_seen":null,"last_seen":null,"value":"198.51.100.7",`,
				e*attributes+a+1, e+1, e*attributes+a)
			fmt.Fprintf(&sb, `"Event":{"org_id":"1","distribution":"1","id":"%d","info":"Phishing wave %d","orgc_id":"1","uuid":"542e4c9c-cadc-4f8f-bb11-%012d",`+
				`"date":"2024-01-02","published":true,"analysis":"2","threat_level_id":"%d","timestamp":"1704153600",`+
				`"Orgc":{"id":"1","name":"CIRCL","uuid":"55f6ea5e-2c60-40e5-964f-47a8950d210f"},"Tag":[%s]},`,
				e+1, e, e, 1+e%4, eventTags)
			sb.WriteString(`"Tag":[` + inherited + `,{"id":"9","name":"kill-chain:Command and Control","colour":"#ff0000","exportable":true},{"id":"10","name":"confidence:high","colour":"#00ff00","exportable":true}],`)
			sb.WriteString(`"warnings":[{"value":"198.51.100.7","match":"198.51.100.0/24","warninglist_id":"44","warninglist_name":"List of known hosting providers","warninglist_category":"known"}],`)
			sb.WriteString(`"decay_score":[{"score":49.98530793883329,"base_score":80,"decayed":false,"DecayingModel":{"id":"1","name":"NIDS Simple Decaying Model"}},` +
				`{"score":12,"base_score":80,"decayed":true,"DecayingModel":{"id":"2","name":"Short"}}],`)
			sb.WriteString(`"Sighting":[`)
			for s := range sightings {
				if s > 0 {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, `{"id":"%d","attribute_id":"1","event_id":"1","org_id":"1","date_sighting":"%d","uuid":"5efbf8b2-88de-40a5-8b47-%012d","source":"sensor-%d","type":"%d",`+
					`"attribute_uuid":"5e6b336e-5224-445f-b1b3-457dd7dd9f6d","Organisation":{"id":"1","uuid":"5ce29ac4-3b54-459e-a6ee-00acac110002","name":"ORGNAME"}}`,
					s+1, 1700000000+s, s, s%20, []int{0, 0, 0, 1, 2}[s%5])
			}
			sb.WriteString(`]}`)
		}
	}
	sb.WriteString(`]}}`)
	return []byte(sb.String())
}
