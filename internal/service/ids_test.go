package service

import (
	"regexp"
	"testing"

	"github.com/google/uuid"
)

// TestTransientID: a transient ID is "transient:<kind>-" and a random version 4 UUID in
// canonical form, a new one each call, made with one allocation (uuid.NewString and the
// concatenation made four).
func TestTransientID(t *testing.T) {
	form := regexp.MustCompile(`^transient:judgement-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := transientID("judgement")
		if !form.MatchString(id) {
			t.Fatalf("%q is not a transient ID with a version 4 UUID", id)
		}
		u, err := uuid.Parse(id[len("transient:judgement-"):])
		if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%q: %v, version %d, variant %v", id, err, u.Version(), u.Variant())
		}
		if seen[id] {
			t.Fatalf("%q twice", id)
		}
		seen[id] = true
	}
	// One allocation, the ID's text; the race detector moves the random bytes to the heap too.
	want := 1.0
	if raceDetector {
		want = 2
	}
	if n := testing.AllocsPerRun(100, func() { _ = transientID("relationship") }); n != want {
		t.Errorf("%v allocations per ID, want %v", n, want)
	}
}
