package service

import "testing"

func TestPyRepr(t *testing.T) {
	tests := []struct{ in, want string }{
		{`abc`, `'abc'`},
		{`it's`, `"it's"`},
		{`it's "x"`, `'it\'s "x"'`},
		{"tab\there", `'tab\there'`},
		{"\x01", `'\x01'`},
		{`back\slash`, `'back\\slash'`},
		{"Сlassified", `'Сlassified'`},
	}
	for _, tt := range tests {
		if got := PyRepr(tt.in); got != tt.want {
			t.Errorf("PyRepr(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
