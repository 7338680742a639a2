package service

import (
	"strings"
	"testing"

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
		{`[1,2`, 0, false},
		{`[1] x`, 0, false},
		{``, 0, false},
	}
	for _, tt := range tests {
		n, ok := topLevelCount([]byte(tt.body))
		if n != tt.n || ok != tt.ok {
			t.Errorf("topLevelCount(%s) = %d, %v; want %d, %v", tt.body, n, ok, tt.n, tt.ok)
		}
	}
}

func TestObservableListRoutes(t *testing.T) {
	spec, err := gen.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	got := observableListRoutes(spec)
	want := map[string]bool{
		"/deliberate/observables": true, "/observe/observables": true, "/refer/observables": true, "/respond/observables": true,
	}
	if len(got) != len(want) {
		t.Errorf("observable list routes %v, want %v", got, want)
	}
	for p := range want {
		if !got[p] {
			t.Errorf("%s is missing from %v", p, got)
		}
	}
}
