package mispjson_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/mispjson"
)

// unmarshalCases are attributes and events in every shape the tests know: the recorded real
// answers of both packages' testdata, and values of the wrong kind in each place they can be,
// which Unmarshal's strict pass gives up on.
func unmarshalCases(t testing.TB) (attributes, events [][]byte) {
	t.Helper()
	for _, path := range []string{
		"testdata/misp_attributes_restsearch_context_sightings.json",
		"../misp/testdata/misp_attributes_restsearch_context_sightings.json",
		"../misp/testdata/misp_attributes_restsearch_md5_minimal.json",
		"../misp/testdata/misp-2.5.1/restsearch_batch.json",
	} {
		raw, err := os.ReadFile(filepath.FromSlash(path))
		if err != nil {
			t.Fatal(err)
		}
		var answer struct {
			Response struct{ Attribute []json.RawMessage }
		}
		if err := json.Unmarshal(raw, &answer); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(answer.Response.Attribute) == 0 {
			t.Fatalf("%s: no attribute", path)
		}
		for _, a := range answer.Response.Attribute {
			attributes = append(attributes, a)
		}
	}
	for _, path := range []string{"testdata/circl_event_57c4445b.json", "../misp/testdata/circl_event_57c4445b.json"} {
		raw, err := os.ReadFile(filepath.FromSlash(path))
		if err != nil {
			t.Fatal(err)
		}
		var f struct{ Event json.RawMessage }
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		events = append(events, f.Event)
	}
	for _, field := range []string{
		`"Tag":null,"Sighting":null,"warnings":null,"decay_score":null`,
		`"Tag":{}`, `"Tag":[1,{"name":"a"}]`, `"Tag":[{"name":"a"},null,"b"]`, `"Tag":[{"name":["a"]},{"name":"b"}]`,
		`"Tag":[` + strings.Repeat(`{"name":"t"},`, mispjson.MaxTags) + `1]`,
		`"Sighting":"many"`, `"Sighting":[1,null,{"type":"1"}]`, `"Sighting":[null]`, `"Sighting":[{"type":{}},{"type":"2","date_sighting":"1700000000"}]`,
		`"Sighting":[{"type":"1","Organisation":[]},{"source":"s"}]`, `"Sighting":[{"source":{}},{"Organisation":[]}]`,
		`"Sighting":[{"type":"0"},7,{"Organisation":"x","type":"1"},{"source":"s"}]`,
		`"warnings":7`, `"warnings":[{"warninglist_name":{}}]`, `"warnings":[{},"x"]`,
		`"decay_score":{"score":1}`, `"decay_score":[{"score":1,"decayed":"maybe"}]`, `"decay_score":[{"score":1,"DecayingModel":[]}]`,
		`"Event":[]`, `"Event":{"uuid":"e","Orgc":[],"Tag":[{"name":"x"}]}`, `"Event":{"uuid":"e","Tag":"x","info":"i"}`,
		`"UUID":"upper","Value":"v2","value":"v3","VALUE":"v4"`, `"to_ids":"1","deleted":{},"first_seen":1700000000123456`,
		`"comment":"\u00e9\ud800\"x\"","category":"` + "\xff" + `"`,
		`"Event":{"uuid":"a"},"Event":{"info":"merged"}`,
	} {
		attributes = append(attributes, []byte(`{"type":"md5",`+field+`,"value":"d41d8cd98f00b204e9800998ecf8427e","Event":{"uuid":"u"}}`))
	}
	attributes = append(attributes, []byte(`[]`), []byte(`"x"`), []byte(`null`), []byte(`{}`))
	events = append(events,
		[]byte(`{"uuid":"u","Attribute":[{"Tag":[1]},[]],"Object":[{"name":"o","Attribute":[{"value":"v","Sighting":[{"Organisation":1}]}]}]}`),
		[]byte(`{"uuid":"u","Object":{},"Attribute":{}}`),
	)
	return attributes, events
}

// sameDecoding compares what Unmarshal and json.Unmarshal decoded, unexported fields and
// errors (their type, text and offset) included.
var sameDecoding = cmp.Options{
	cmp.Exporter(func(reflect.Type) bool { return true }),
	cmp.Comparer(func(a, b error) bool { return reflect.DeepEqual(a, b) }),
}

// TestUnmarshalIsJSONUnmarshal: Unmarshal decodes every attribute and event exactly as
// json.Unmarshal does, the values' Err and the error returned included, whether its strict
// pass succeeds or gives up.
func TestUnmarshalIsJSONUnmarshal(t *testing.T) {
	attributes, events := unmarshalCases(t)
	for _, raw := range attributes {
		checkSameDecoding[mispjson.Attribute](t, raw)
	}
	for _, raw := range events {
		checkSameDecoding[mispjson.Event](t, raw)
	}
}

func checkSameDecoding[T any](t *testing.T, raw []byte) {
	t.Helper()
	var want, got T
	wantErr := json.Unmarshal(raw, &want)
	gotErr := mispjson.Unmarshal(raw, &got)
	if diff := cmp.Diff(wantErr, gotErr, sameDecoding); diff != "" {
		t.Errorf("%.80s: error (-json.Unmarshal +Unmarshal):\n%s", raw, diff)
	}
	if diff := cmp.Diff(want, got, sameDecoding); diff != "" {
		t.Errorf("%.80s: (-json.Unmarshal +Unmarshal):\n%s", raw, diff)
	}
}

// FuzzUnmarshal: for any JSON, Unmarshal decodes an attribute as json.Unmarshal does.
func FuzzUnmarshal(f *testing.F) {
	attributes, _ := unmarshalCases(f)
	for _, raw := range attributes {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // the MISP client hands Unmarshal whole values its decoder has checked
		}
		checkSameDecoding[mispjson.Attribute](t, raw)
	})
}
