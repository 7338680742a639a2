package feed_test

import (
	"crypto/md5" //nolint:gosec // test values, not security
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// genFeed is a generated MISP feed: event files by name, and manifest.json.
type genFeed map[string][]byte

type genAttr struct {
	UUID      string `json:"uuid"`
	Type      string `json:"type"`
	Category  string `json:"category"`
	Value     string `json:"value"`
	ToIDS     bool   `json:"to_ids"`
	Timestamp string `json:"timestamp"`
	FirstSeen string `json:"first_seen,omitempty"`
	Tag       []struct {
		Name string `json:"name"`
	} `json:"Tag,omitempty"`
}

type genEvent struct {
	UUID          string                      `json:"uuid"`
	Info          string                      `json:"info"`
	Date          string                      `json:"date"`
	Timestamp     string                      `json:"timestamp"`
	ThreatLevelID string                      `json:"threat_level_id"`
	Analysis      string                      `json:"analysis"`
	Published     bool                        `json:"published"`
	Orgc          struct{ Name, UUID string } `json:"Orgc"`
	Tag           []struct {
		Name string `json:"name"`
	} `json:"Tag,omitempty"`
	Attribute []genAttr `json:"Attribute"`
	Object    []struct {
		Attribute []genAttr `json:"Attribute"`
	} `json:"Object,omitempty"`
}

// genValue is the value number i: a mix of the types XDR asks about, composites included.
func genValue(i int) (typ, value string) {
	sum := md5.Sum(fmt.Appendf(nil, "%d", i)) //nolint:gosec // test values
	sha := sha256.Sum256(fmt.Appendf(nil, "%d", i))
	switch i % 8 {
	case 0:
		return "domain", fmt.Sprintf("host%d.example%d.test", i, i%7)
	case 1:
		return "ip-dst", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	case 2:
		return "md5", hex.EncodeToString(sum[:])
	case 3:
		return "sha256", hex.EncodeToString(sha[:])
	case 4:
		return "url", fmt.Sprintf("https://site%d.test/path/%d", i%1000, i)
	case 5:
		return "domain|ip", fmt.Sprintf("c2-%d.test|10.%d.%d.%d", i, i>>16&255, i>>8&255, i&255)
	case 6:
		return "filename|sha256", fmt.Sprintf("dropper%d.exe|%s", i, hex.EncodeToString(sha[:]))
	default:
		return "ip-src", fmt.Sprintf("2001:db8::%x", i&0xffff)
	}
}

func genUUID(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// makeEvent builds event number n with per values drawn from a pool of pool values (so that
// values repeat across events when pool < events × per), some in objects, some in upper case.
func makeEvent(r *rand.Rand, n, per, pool int) genEvent {
	ev := genEvent{
		UUID: genUUID(r), Info: fmt.Sprintf("generated event %d", n),
		Date: fmt.Sprintf("2024-%02d-%02d", 1+n%12, 1+n%28), Timestamp: fmt.Sprint(1700000000 + n),
		ThreatLevelID: fmt.Sprint(1 + n%4), Analysis: fmt.Sprint(n % 3), Published: n%2 == 0,
	}
	ev.Orgc.Name, ev.Orgc.UUID = "Generated CERT", "3ec5774b-9c8f-4a83-a0fc-f4bb732aa7b8"
	ev.Tag = append(ev.Tag, struct {
		Name string `json:"name"`
	}{"tlp:white"})
	ev.Object = make([]struct {
		Attribute []genAttr `json:"Attribute"`
	}, 1)
	for i := range per {
		typ, value := genValue(r.IntN(pool))
		if r.IntN(10) == 0 {
			value = upper(value)
		}
		a := genAttr{
			UUID: genUUID(r), Type: typ, Category: "Network activity", Value: value,
			ToIDS: i%3 != 0, Timestamp: fmt.Sprint(1700000000 + i),
		}
		if i%5 == 0 {
			a.FirstSeen = "2024-01-02T03:04:05.123456+00:00"
			a.Tag = append(a.Tag, struct {
				Name string `json:"name"`
			}{"kill-chain:Delivery"})
		}
		if i%4 == 3 {
			ev.Object[0].Attribute = append(ev.Object[0].Attribute, a)
		} else {
			ev.Attribute = append(ev.Attribute, a)
		}
	}
	return ev
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// newGenFeed generates a feed of events × per values drawn from pool.
func newGenFeed(tb testing.TB, seed uint64, events, per, pool int) genFeed {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	f := genFeed{}
	manifest := map[string]any{}
	for n := range events {
		ev := makeEvent(r, n, per, pool)
		f.put(tb, ev)
		manifest[ev.UUID] = map[string]any{"info": ev.Info, "date": ev.Date, "timestamp": ev.Timestamp}
	}
	b, err := json.Marshal(manifest)
	if err != nil {
		tb.Fatal(err)
	}
	f["manifest.json"] = b
	return f
}

// put stores ev's file (not the manifest).
func (f genFeed) put(tb testing.TB, ev genEvent) {
	tb.Helper()
	b, err := json.Marshal(map[string]genEvent{"Event": ev})
	if err != nil {
		tb.Fatal(err)
	}
	f[ev.UUID+".json"] = b
}

// writeDir writes the feed into dir.
func (f genFeed) writeDir(tb testing.TB, dir string) {
	tb.Helper()
	for name, b := range f {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// values lists every attribute value of the feed with its type.
func (f genFeed) values(tb testing.TB) [][2]string {
	tb.Helper()
	var out [][2]string
	for name, b := range f {
		if name == "manifest.json" {
			continue
		}
		var w struct{ Event genEvent }
		if err := json.Unmarshal(b, &w); err != nil {
			tb.Fatal(err)
		}
		for _, a := range w.Event.Attribute {
			out = append(out, [2]string{a.Type, a.Value})
		}
		for _, o := range w.Event.Object {
			for _, a := range o.Attribute {
				out = append(out, [2]string{a.Type, a.Value})
			}
		}
	}
	return out
}
