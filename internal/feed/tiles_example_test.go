package feed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/tiles"
)

// The five tiles of the sample feed (make run) as the relay drew them on 15 May 2024 at
// 12:00 UTC, the day after its newest event: last_90_days, but for the bar chart
// (last_7_days, 7 bars rather than 90). The README shows them.
func Example_tilesOfTheSampleFeed() {
	store, err := feed.Load("../../sample/feed")
	if err != nil {
		panic(err)
	}
	for _, d := range tiles.Definitions() {
		period := tiles.Last90Days
		if d.ID == tiles.ThreatLevels {
			period = tiles.Last7Days
		}
		data, err := (*tiles.Board)(nil).Data(context.Background(), tiles.Request{
			Source: store, UI: "https://misp.example", Tile: d.ID, Period: period,
			Now: time.Date(2024, 5, 15, 12, 0, 0, 0, time.UTC),
		})
		if err != nil {
			panic(err)
		}
		b, _ := json.Marshal(map[string]any{"data": data})
		fmt.Printf("%s: %s\n", d.ID, b)
	}
	// Output:
	// misp-summary: {"data":{"observed_time":{"start_time":"2024-02-16T00:00:00Z","end_time":"2024-05-15T12:00:00Z"},"valid_time":{"start_time":"2024-05-15T12:00:00Z","end_time":"2024-05-15T12:05:00Z"},"cache_scope":"org","data":[{"icon":"warning","label":"Events","value":3,"value_unit":"integer","tooltip":"3 in the last 90 days; 1 in the 90 days before (+200%)."},{"icon":"list","label":"Attributes","value":31,"value_unit":"integer","tooltip":"31 in the last 90 days; 6 in the 90 days before (+416%)."},{"icon":"target","label":"IDS attributes","value":26,"value_unit":"integer","tooltip":"26 in the last 90 days; 4 in the 90 days before (+550%)."},{"icon":"eye","label":"Sightings","value":0,"value_unit":"integer","tooltip":"0 in the last 90 days; 0 in the 90 days before (no change)."}]}}
	// misp-threat-levels: {"data":{"observed_time":{"start_time":"2024-05-09T00:00:00Z","end_time":"2024-05-15T12:00:00Z"},"valid_time":{"start_time":"2024-05-15T12:00:00Z","end_time":"2024-05-15T12:05:00Z"},"cache_scope":"org","key_type":"timestamp","keys":[{"key":"high","label":"High"},{"key":"medium","label":"Medium"},{"key":"low","label":"Low"},{"key":"undefined","label":"Undefined"}],"data":[{"key":1715212800000,"label":"May 9","value":0,"values":[{"key":"high","value":0},{"key":"medium","value":0},{"key":"low","value":0},{"key":"undefined","value":0}]},{"key":1715299200000,"label":"May 10","value":0,"values":[{"key":"high","value":0},{"key":"medium","value":0},{"key":"low","value":0},{"key":"undefined","value":0}]},{"key":1715385600000,"label":"May 11","value":0,"values":[{"key":"high","value":0},{"key":"medium","value":0},{"key":"low","value":0},{"key":"undefined","value":0}]},{"key":1715472000000,"label":"May 12","value":0,"values":[{"key":"high","value":0},{"key":"medium","value":0},{"key":"low","value":0},{"key":"undefined","value":0}]},{"key":1715558400000,"label":"May 13","value":0,"values":[{"key":"high","value":0},{"key":"medium","value":0},{"key":"low","value":0},{"key":"undefined","value":0}]},{"key":1715644800000,"label":"May 14","value":1,"values":[{"key":"high","value":1},{"key":"medium","value":0},{"key":"low","value":0},{"key":"undefined","value":0}]},{"key":1715731200000,"label":"May 15","value":0,"values":[{"key":"high","value":0},{"key":"medium","value":0},{"key":"low","value":0},{"key":"undefined","value":0}]}]}}
	// misp-attribute-types: {"data":{"observed_time":{"start_time":"2024-02-16T00:00:00Z","end_time":"2024-05-15T12:00:00Z"},"valid_time":{"start_time":"2024-05-15T12:00:00Z","end_time":"2024-05-15T12:05:00Z"},"cache_scope":"org","labels":[["Network","File hashes","URLs","Email","Other"]],"data":[{"key":0,"value":14},{"key":1,"value":8},{"key":2,"value":2},{"key":3,"value":1},{"key":4,"value":1}]}}
	// misp-top-tags: {"data":{"observed_time":{"start_time":"2024-02-16T00:00:00Z","end_time":"2024-05-15T12:00:00Z"},"valid_time":{"start_time":"2024-05-15T12:00:00Z","end_time":"2024-05-15T12:05:00Z"},"cache_scope":"org","labels":[["circl:incident-classification=\"phishing\"","kill-chain:Command and Control","malware_classification:malware-category=\"Trojan\"","osint:source-type=\"blog-post\"","tlp:amber","tlp:green","tlp:white","type:OSINT"]],"data":[{"key":0,"value":1},{"key":1,"value":1},{"key":2,"value":1},{"key":3,"value":1},{"key":4,"value":1},{"key":5,"value":1},{"key":6,"value":1},{"key":7,"value":1}]}}
	// misp-latest-events: {"data":{"observed_time":{"start_time":"2024-02-16T00:00:00Z","end_time":"2024-05-15T12:00:00Z"},"valid_time":{"start_time":"2024-05-15T12:00:00Z","end_time":"2024-05-15T12:05:00Z"},"cache_scope":"org","data":["| Threat | Event | Organisation | Date | Changed | Attributes |","| --- | --- | --- | --- | --- | ---: |","| High | [Invoice-themed phishing delivering a banking trojan to finance departments](https://misp.example/events/view/ffb4d04a-a994-4e7d-8d96-366b8422d95f) | Example CERT | 2024-05-14 | 2024-05-14 15:20 | 11 |","| Medium | [Cobalt Strike command-and-control infrastructure seen in an intrusion](https://misp.example/events/view/473ef501-ffb0-4455-b006-b22fc85966a2) | Example Security Operations | 2024-03-02 | 2024-03-04 09:12 | 9 |"]}}
}
