package mispjson_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/mispjson"
)

// BenchmarkDecode is the cost of reading MISP's JSON into what the relay keeps: one restSearch
// attribute as the MISP client decodes it, and one feed file as the feed loader does.
//
//	go test -run '^$' -bench . -benchmem ./internal/mispjson/
func BenchmarkDecode(b *testing.B) {
	var answer struct {
		Response struct{ Attribute []json.RawMessage }
	}
	raw, err := os.ReadFile("testdata/misp_attributes_restsearch_context_sightings.json")
	if err == nil {
		err = json.Unmarshal(raw, &answer)
	}
	if err != nil {
		b.Fatal(err)
	}
	feedFile, err := os.ReadFile("testdata/circl_event_57c4445b.json")
	if err != nil {
		b.Fatal(err)
	}
	var sightings []string
	for i := range 2000 {
		sightings = append(sightings, `{"id":"`+strings.Repeat("7", 1+i%6)+`","type":"`+[]string{"0", "0", "1", "2"}[i%4]+
			`","date_sighting":"1700000000","source":"sensor-0001","Organisation":{"id":"1","name":"Example SOC","uuid":"5ce29ac4-3b54-459e-a6ee-00acac110002"}}`)
	}
	popular := []byte(`{"type":"ip-dst","value":"198.51.100.7","Event":{"uuid":"542e4c9c-cadc-4f8f-bb11-6d13950d210b"},"Sighting":[` + strings.Join(sightings, ",") + `]}`)

	attribute := func(raw []byte) func(*testing.B) {
		return func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				var a mispjson.Attribute
				if err := mispjson.Unmarshal(raw, &a); err != nil {
					b.Fatal(err)
				}
				if got := a.Intel(); got.Value == "" {
					b.Fatal("no value")
				}
			}
		}
	}
	b.Run("attribute", attribute(answer.Response.Attribute[0]))
	b.Run("attribute-2000-sightings", attribute(popular))
	b.Run("feed-event", func(b *testing.B) {
		b.SetBytes(int64(len(feedFile)))
		for b.Loop() {
			var f struct {
				Event *mispjson.Event `json:"Event"`
			}
			if err := json.Unmarshal(feedFile, &f); err != nil {
				b.Fatal(err)
			}
			if err := f.Event.Check(); err != nil {
				b.Fatal(err)
			}
			for i := range f.Event.Attribute {
				_ = f.Event.Attribute[i].Intel()
			}
		}
	})
}
