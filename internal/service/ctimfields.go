package service

import (
	"strings"
	"time"

	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// tlpOf reads the first tlp: tag. TLP 2.0's clear and amber+strict map to CTIM's white and
// amber, the closest markings CTIM 1.1 has.
func tlpOf(tags []string) *gen.TLP {
	for _, t := range tags {
		t = strings.TrimSpace(t)
		// Compared ignoring case without lower-casing a copy: this runs for every tag of
		// every matched attribute and event.
		if len(t) < 4 || !strings.EqualFold(t[:4], "tlp:") {
			continue
		}
		switch name := t[4:]; {
		case strings.EqualFold(name, "white"), strings.EqualFold(name, "clear"):
			return &tlpWhite
		case strings.EqualFold(name, "green"):
			return &tlpGreen
		case strings.EqualFold(name, "amber"), strings.EqualFold(name, "amber+strict"):
			return &tlpAmber
		case strings.EqualFold(name, "red"):
			return &tlpRed
		}
	}
	return nil
}

// The TLP markings tlpOf points at: shared, never written through.
var tlpWhite, tlpGreen, tlpAmber, tlpRed = gen.White, gen.Green, gen.Amber, gen.Red

// stricter returns the more restrictive of two TLP markings (nil is no marking).
func stricter(a, b *gen.TLP) *gen.TLP {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case tlpRank(*b) > tlpRank(*a):
		return b
	}
	return a
}

// tlpRank orders markings from the least to the most restrictive.
func tlpRank(t gen.TLP) int {
	switch t {
	case gen.Green:
		return 1
	case gen.Amber:
		return 2
	case gen.Red:
		return 3
	}
	return 0
}

func eventDate(e intel.Event) time.Time {
	d, err := time.Parse(time.DateOnly, e.Date)
	if err != nil {
		return time.Time{}
	}
	return clampTime(d)
}

// clampTime keeps times inside CTIM's range [1970, 2525-01-01], so a MISP record with a
// silly date cannot make the whole response invalid.
func clampTime(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Second)
	switch {
	case t.IsZero():
		return t
	case t.Before(time.Unix(0, 0)):
		return time.Unix(0, 0).UTC()
	case t.After(endOfTime):
		return endOfTime
	}
	return t
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = clampTime(t)
	return &t
}

func ptr[T any](v T) *T { return &v }

// clip shortens s to at most n runes, so long MISP text cannot break CTIM's length limits.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
