package httpapi

import (
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/gen"
)

// The cases of the relay contract (§3.3), verified against marshmallow by running it.
func TestObservableListProblems(t *testing.T) {
	tests := []struct{ body, want string }{
		{`null`, `{'_schema': ['Invalid input type.']}`},
		{`not json`, `{'_schema': ['Invalid input type.']}`},
		{``, `{'_schema': ['Invalid input type.']}`},
		{`{}`, `{'_schema': ['Invalid input type.']}`},
		{`{"type":"ip"}`, `{'_schema': ['Invalid input type.']}`},
		{`"abc"`, `{'_schema': ['Invalid input type.']}`},
		{`5`, `{'_schema': ['Invalid input type.']}`},
		{`[] []`, `{'_schema': ['Invalid input type.']}`},
		{`[]`, ``},
		{`[{"type":"ip","value":""}]`, `{0: {'value': ['Field may not be blank.']}}`},
		{`[{"type":"ip"}]`, `{0: {'value': ['Missing data for required field.']}}`},
		{`[{}]`, `{0: {'type': ['Missing data for required field.'], 'value': ['Missing data for required field.']}}`},
		{`[{"type":"","value":""}]`, `{0: {'type': ['Field may not be blank.'], 'value': ['Field may not be blank.']}}`},
		{`[{"type":"ip","value":"1","extra":1}]`, `{0: {'extra': ['Unknown field.']}}`},
		{`[{"type":"ip","value":1}]`, `{0: {'value': ['Not a valid string.']}}`},
		{`[{"type":null,"value":"x"}]`, `{0: {'type': ['Field may not be null.']}}`},
		{`["str"]`, `{0: {'_schema': ['Invalid input type.']}}`},
		{`[null]`, `{0: {'_schema': ['Invalid input type.']}}`},
		{`[[1]]`, `{0: {'_schema': ['Invalid input type.']}}`},
		{`[{"type":"ip","value":"1.1.1.1"},{"type":"ip","value":""}]`, `{1: {'value': ['Field may not be blank.']}}`},
		{`[{"type":"ip","value":" "}]`, ``},
		{`[{"type":"ip","value":"1","b":1,"a":2}]`, `{0: {'a': ['Unknown field.'], 'b': ['Unknown field.']}}`},
		{`[{"type":"ip","value":"1","it's":1}]`, `{0: {"it's": ['Unknown field.']}}`},
		{`[{"type":"ip","value":"1","a\nb\\":1}]`, `{0: {'a\nb\\': ['Unknown field.']}}`},
		{`[{"type":"ip"},{"value":""}]`, `{0: {'value': ['Missing data for required field.']}, 1: {'type': ['Missing data for required field.'], 'value': ['Field may not be blank.']}}`},
		{`[{"type":"ip","value":"` + strings.Repeat("é", 4096) + `"}]`, ``},
		{`[{"type":"ip","value":"` + strings.Repeat("1", 4097) + `"}]`, ``}, // skipped later, not refused
		{`[{"type":"` + strings.Repeat("t", 129) + `","value":"1"}]`, `{0: {'type': ['Longer than maximum length 128.']}}`},
	}
	for _, tt := range tests {
		if got := observableListProblems([]byte(tt.body)); got != tt.want {
			t.Errorf("observableListProblems(%s)\n got %s\nwant %s", tt.body, got, tt.want)
		}
	}
}

func TestTriggerProblems(t *testing.T) {
	const m = `'Missing data for required field.'`
	tests := []struct{ body, want string }{
		{`null`, `{'_schema': ['Invalid input type.']}`},
		{`[]`, `{'_schema': ['Invalid input type.']}`},
		{`{}`, `{'action-id': [` + m + `], 'observable_type': [` + m + `], 'observable_value': [` + m + `]}`},
		{`{"action_id":"x","observable_type":"d","observable_value":"c"}`, `{'action-id': [` + m + `]}`},
		{`{"action-id":"x","observable_type":"ip","observable_value":""}`, `{'observable_value': ['Field may not be blank.']}`},
		{`{"action-id":1,"observable_type":"ip","observable_value":"x"}`, `{'action-id': ['Not a valid string.']}`},
		{`{"action-id":"x","observable_type":"ip","observable_value":"x","extra":[1]}`, ``},
		{
			`{"action-id":"` + strings.Repeat("a", 129) + `","observable_type":"ip","observable_value":"` + strings.Repeat("é", 4097) + `"}`,
			`{'action-id': ['Longer than maximum length 128.'], 'observable_value': ['Longer than maximum length 4096.']}`,
		},
	}
	for _, tt := range tests {
		if got := triggerProblems([]byte(tt.body)); got != tt.want {
			t.Errorf("triggerProblems(%s)\n got %s\nwant %s", tt.body, got, tt.want)
		}
	}
}

// TestMaxLengthMatchesSpec: the lengths checkObject words as marshmallow would are the spec's,
// counted the same way (characters), so a value the validator refuses for its length is
// explained by name rather than as a bare schema error.
func TestMaxLengthMatchesSpec(t *testing.T) {
	spec, err := gen.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	bodies := map[string][]string{
		"ObservableInput": {"type"},
		"TriggerRequest":  {"action-id", "observable_type", "observable_value"},
	}
	for name, fields := range bodies {
		for _, f := range fields {
			s := spec.Components.Schemas[name].Value.Properties[f].Value
			if s.MaxLength == nil || *s.MaxLength != uint64(maxLength[f]) {
				t.Errorf("%s.%s: spec maxLength %v, maxLength[%q] = %d", name, f, s.MaxLength, f, maxLength[f])
				continue
			}
			longest := strings.Repeat("é", maxLength[f])
			if err := s.VisitJSON(longest); err != nil {
				t.Errorf("%s.%s: the spec refuses %d characters: %v", name, f, maxLength[f], err)
			}
			if err := s.VisitJSON(longest + "é"); err == nil {
				t.Errorf("%s.%s: the spec takes %d characters", name, f, maxLength[f]+1)
			}
		}
	}
}
