package httpapi

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/misp-relay/misp-relay/internal/gen"
)

// TestProblemsAreBounded: however many items or unknown fields are wrong, the message lists a
// few and counts the rest.
func TestProblemsAreBounded(t *testing.T) {
	body := "[" + strings.TrimSuffix(strings.Repeat(`{},`, 999), ",") + "]"
	got := observableListProblems([]byte(body))
	m := `{'type': ['Missing data for required field.'], 'value': ['Missing data for required field.']}`
	want := "{0: " + m + ", 1: " + m + ", 2: " + m + ", 3: " + m + ", 4: " + m + "} and 994 more items with problems."
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	var fields []string
	for _, k := range []string{"k1", "k2", "k3", "k4", "k5", "k6", "k7"} {
		fields = append(fields, `"`+k+`":1`)
	}
	got = observableListProblems([]byte(`[{"type":"ip","value":"x",` + strings.Join(fields, ",") + `}]`))
	u := `['Unknown field.']`
	want = "{0: {'k1': " + u + ", 'k2': " + u + ", 'k3': " + u + ", 'k4': " + u + ", 'k5': " + u + "}} and 2 more unknown fields."
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestTopLevelCount(t *testing.T) {
	tests := []struct {
		body string
		n    int
		ok   bool
	}{
		{`[]`, 0, true},
		{` [ ] `, 0, true},
		{`[1]`, 1, true},
		{`[{},{},{}]`, 3, true},
		{`[{"a":[1,2,3],"b":"x,y]"},"\"],",[[],[]]]`, 3, true},
		{`{"a":1}`, 0, false},
		{`[1,2`, 2, false},
		{`[1] x`, 1, false},
		{``, 0, false},
	}
	for _, tt := range tests {
		// The count does not check the JSON: admit checks a list counted too long with
		// json.Valid before refusing it for its size.
		if n := topLevelCount([]byte(tt.body)); n != tt.n {
			t.Errorf("topLevelCount(%s) = %d; want %d", tt.body, n, tt.n)
		}
	}
}

func TestObservableListRoutes(t *testing.T) {
	spec, err := gen.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, op := range routesOf(spec).ops {
		if op.list {
			got[op.path] = true
		}
	}
	want := map[string]bool{
		"/deliberate/observables": true, "/observe/observables": true, "/refer/observables": true, "/respond/observables": true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observable list routes (-want +got):\n%s", diff)
	}
}

// BenchmarkObservableListProblems builds the marshmallow message for a rejected 50-item body
// (every item wrong in one of the ways the contract words: blank, missing, null, not a string,
// unknown field, not an object). It runs on every rejected request, after kin-openapi.
func BenchmarkObservableListProblems(b *testing.B) {
	bad := []string{
		`{"type":"ip","value":""}`,
		`{"type":"ip"}`,
		`{"type":null,"value":"198.51.100.7"}`,
		`{"type":"ip","value":7}`,
		`{"type":"ip","value":"198.51.100.7","extra":1,"other":"x"}`,
		`"not an object"`,
	}
	items := make([]string, 50)
	for i := range items {
		items[i] = bad[i%len(bad)]
	}
	body := []byte("[" + strings.Join(items, ",") + "]")
	if observableListProblems(body) == "" {
		b.Fatal("the body was accepted")
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = observableListProblems(body)
	}
}
