package inteltest

import (
	"fmt"
	"time"

	"github.com/misp-relay/misp-relay/internal/intel"
)

// Events makes n events (numbered from first, so that calls with different first make
// different events) with attrs matched attributes each, shaped like the events the MISP client
// returns: mixed threat levels (so sorting does work), tags with a TLP, an organisation and
// attribute times.
func Events(first, n, attrs int) []intel.Event {
	events := make([]intel.Event, n)
	for k := range events {
		i := first + k
		ts := time.Unix(1_700_000_000+int64(i)*60, 0).UTC()
		e := intel.Event{
			UUID:        fmt.Sprintf("5f0e1a2b-%04x-4222-8333-%012x", i%0x10000, i),
			Info:        fmt.Sprintf("Benchmark campaign %d: phishing wave with a loader", i),
			Date:        "2024-01-15",
			Timestamp:   ts,
			ThreatLevel: 1 + i%4,
			Org:         "Example CERT",
			Tags:        []string{"tlp:amber", "misp-galaxy:threat-actor=\"Bench\"", "type:OSINT"},
		}
		for j := range attrs {
			e.Attributes = append(e.Attributes, intel.Attribute{
				Type:      "ip-dst",
				Category:  "Network activity",
				Value:     "198.51.100.7",
				ToIDS:     true,
				Timestamp: ts.Add(time.Duration(j) * time.Second),
			})
		}
		events[k] = e
	}
	return events
}
