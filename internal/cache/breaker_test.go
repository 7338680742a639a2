package cache

import (
	"errors"
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	errDown := errors.New("down")
	type step struct {
		advance time.Duration
		err     error // outcome of one operation, when allowed
		n       int   // repeated n times (default 1)
	}
	second := breakerSpan
	tests := []struct {
		name  string
		steps []step
		want  breakerState
	}{
		{"failing for a second", []step{{err: errDown}, {advance: second, err: errDown, n: 4}}, stateOpen},
		{"four failures are not enough", []step{{err: errDown}, {advance: second, err: errDown, n: 3}}, stateClosed},
		{"a burst of failures (within a second)", []step{{n: 100}, {err: errDown, n: 50}}, stateClosed},
		{"a success ends the run", []step{{err: errDown, n: 3}, {advance: second}, {err: errDown, n: 4}}, stateClosed},
		{"still open before openFor", []step{{err: errDown}, {advance: second, err: errDown, n: 4}, {advance: 9 * time.Second}}, stateOpen},
		{"a good probe closes", []step{{err: errDown}, {advance: second, err: errDown, n: 4}, {advance: 10 * time.Second}}, stateClosed},
		{"a bad probe reopens", []step{{err: errDown}, {advance: second, err: errDown, n: 4}, {advance: 10 * time.Second, err: errDown}}, stateOpen},
		{"closed after a probe, a fresh count", []step{{err: errDown}, {advance: second, err: errDown, n: 4}, {advance: 10 * time.Second}, {advance: second, err: errDown, n: 4}}, stateClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Unix(1000, 0)
			var changes []string
			b := &breaker{
				failures: 5, openFor: 10 * time.Second, now: func() time.Time { return now },
				onChange: func(from, to breakerState, _ error) { changes = append(changes, from.String()+">"+to.String()) },
			}
			for _, s := range tt.steps {
				now = now.Add(s.advance)
				for range max(s.n, 1) {
					if ok, probe := b.allow(); ok {
						b.done(probe, s.err)
					}
				}
			}
			if got := b.current(); got != tt.want {
				t.Errorf("state %s, want %s (changes %v)", got, tt.want, changes)
			}
		})
	}
}

func TestBreakerLetsOneProbeThrough(t *testing.T) {
	now := time.Unix(1000, 0)
	var changes []string
	b := &breaker{
		failures: 1, openFor: time.Second, now: func() time.Time { return now },
		onChange: func(from, to breakerState, _ error) { changes = append(changes, from.String()+">"+to.String()) },
	}
	if ok, probe := b.allow(); !ok || probe {
		t.Fatalf("closed: allow = %v, %v", ok, probe)
	}
	b.done(false, errors.New("down"))
	now = now.Add(breakerSpan)
	b.allow()
	b.done(false, errors.New("down"))
	if ok, _ := b.allow(); ok {
		t.Fatal("open: an operation was allowed")
	}
	now = now.Add(time.Second)
	ok, probe := b.allow()
	if !ok || !probe {
		t.Fatalf("after openFor: allow = %v, %v; want the probe", ok, probe)
	}
	if ok, _ := b.allow(); ok {
		t.Error("a second operation went through while the probe was in flight")
	}
	b.done(true, nil)
	if ok, probe := b.allow(); !ok || probe {
		t.Errorf("after a good probe: allow = %v, %v", ok, probe)
	}
	want := []string{"closed>open", "open>half-open", "half-open>closed"}
	if len(changes) != len(want) {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Errorf("changes %v, want %v", changes, want)
		}
	}
}
