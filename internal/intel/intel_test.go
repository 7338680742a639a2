package intel_test

import (
	"testing"

	"github.com/misp-relay/misp-relay/internal/intel"
)

func TestCanonicalUUID(t *testing.T) {
	for s, want := range map[string]bool{
		"57c4445b-c548-4654-af0b-4be3950d210f": true,
		"57C4445B-C548-4654-AF0B-4BE3950D210F": true,
		"57c4445b-c548-4654-af0b-4be3950d210":  false, // short
		"57c4445b-c548-4654-af0b-4be3950d210g": false, // not hex
		"57c4445bxc548-4654-af0b-4be3950d210f": false, // no hyphen
		"..":                                   false, "": false, "../../../../../../etc/passwd-0000000": false,
	} {
		if got := intel.CanonicalUUID(s); got != want {
			t.Errorf("CanonicalUUID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestSafeValue(t *testing.T) {
	for v, want := range map[string]bool{
		"198.51.100.7": true, "evil.example": true, "a%b": true,
		"": false, "0": false, "!x": false, "%x": false, "x%": false, "a&&b": false,
	} {
		if got := intel.SafeValue(v); got != want {
			t.Errorf("SafeValue(%q) = %v, want %v", v, got, want)
		}
	}
}
