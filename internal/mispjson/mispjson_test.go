package mispjson_test

import (
	"encoding/json"
	"testing"

	"github.com/misp-relay/misp-relay/internal/mispjson"
)

func TestBool(t *testing.T) {
	tests := []struct {
		json       string
		value, set bool
		bad        bool
	}{
		{`true`, true, true, false},
		{`1`, true, true, false},
		{`"1"`, true, true, false},
		{`"true"`, true, true, false},
		{`false`, false, true, false},
		{`0`, false, true, false},
		{`"0"`, false, true, false},
		{`""`, false, true, false},
		{`null`, false, false, false},
		{`"yes"`, false, false, true},
		{`{}`, false, false, true},
	}
	for _, tt := range tests {
		var v struct {
			B mispjson.Bool `json:"b"`
		}
		if err := json.Unmarshal([]byte(`{"b":`+tt.json+`}`), &v); err != nil {
			t.Fatalf("%s: %v", tt.json, err)
		}
		if v.B.Value() != tt.value || v.B.Set() != tt.set || (v.B.Err() != nil) != tt.bad {
			t.Errorf("%s: Value %v Set %v Err %v; want %v %v bad=%v", tt.json, v.B.Value(), v.B.Set(), v.B.Err(), tt.value, tt.set, tt.bad)
		}
	}
	var absent struct {
		B mispjson.Bool `json:"b"`
	}
	if err := json.Unmarshal([]byte(`{}`), &absent); err != nil || absent.B.Set() {
		t.Errorf("an absent field is set (err %v)", err)
	}
	if b := mispjson.B(false); !b.Set() || b.Value() {
		t.Errorf("B(false) = %+v", b)
	}
}

// TestTagExportable: MISP sends exportable as a JSON boolean; an event whose tags carry it must
// still pass the strict check the feed loader applies.
func TestTagExportable(t *testing.T) {
	var ev mispjson.Event
	raw := `{"uuid":"u","Tag":[{"name":"a","exportable":true},{"name":"b","exportable":false},{"name":"c"}]}`
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatal(err)
	}
	if err := ev.Check(); err != nil {
		t.Fatal(err)
	}
	tags := ev.Tag.All()
	got := []bool{tags[0].Exportable.Value(), tags[1].Exportable.Value(), tags[2].Exportable.Set()}
	if got[0] != true || got[1] != false || got[2] != false {
		t.Errorf("exportable (a, b, c set) = %v, want [true false false]", got)
	}
}
