//go:build linux

package feed_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/misp-relay/misp-relay/internal/feed"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// benchEvents × benchPerEvent is the generated feed of BenchmarkLargeFeed: 500,000 values,
// about the size of CIRCL's OSINT feed's index, nearly all distinct.
const (
	benchEvents   = 1000
	benchPerEvent = 500
)

// BenchmarkLargeFeed measures a 500,000-value feed, as today's Store (API_URL) and as a
// Source (FEEDS) hold it: one lookup of a value it holds (ns/op), and, each in a process of
// its own (this test binary run again), the peak RSS of loading it and the live heap per value
// once loaded. make bench runs it; about half a minute, most of it writing the feed.
func BenchmarkLargeFeed(b *testing.B) {
	dir := b.TempDir()
	r := rand.New(rand.NewPCG(11, 12))
	manifest := genFeed{}
	var queries []string
	var mf strings.Builder
	mf.WriteString("{")
	for n := range benchEvents {
		ev := makeEvent(r, n, benchPerEvent, 1<<40)
		f := genFeed{}
		f.put(b, ev)
		f.writeDir(b, dir)
		if n > 0 {
			mf.WriteString(",")
		}
		fmt.Fprintf(&mf, `%q:{"info":%q,"timestamp":%q}`, ev.UUID, ev.Info, ev.Timestamp)
		for _, a := range ev.Attribute[:10] {
			if !strings.Contains(a.Type, "|") {
				queries = append(queries, a.Value)
			}
		}
	}
	mf.WriteString("}")
	manifest["manifest.json"] = []byte(mf.String())
	manifest.writeDir(b, dir)

	// What the relay asks for any of the generated values: every type of genValue.
	types := []string{"domain", "ip-dst", "ip-src", "md5", "sha256", "url", "domain|ip", "filename|sha256"}
	// Each loaded alone, so that neither pays for the other's heap in GC work.
	for _, kind := range []string{"Store", "Source"} {
		b.Run("lookup/"+kind, func(b *testing.B) {
			be := loadLarge(b, kind, dir)
			b.ResetTimer()
			i := 0
			for b.Loop() {
				evs, err := be.Search(context.Background(), "", intel.Query{Value: queries[i%len(queries)], Limit: 100, Types: types})
				if err != nil || len(evs) == 0 {
					b.Fatalf("Search: %v, %d events", err, len(evs))
				}
				i++
			}
		})
		runtime.GC()
	}
	for _, kind := range []string{"Store", "Source"} {
		b.Run("load/"+kind, func(b *testing.B) {
			for b.Loop() {
				cmd := exec.Command(os.Args[0], "-test.run=^TestLargeFeedChild$", "-test.count=1")
				cmd.Env = append(os.Environ(), "FEEDBENCH_DIR="+dir, "FEEDBENCH_KIND="+kind)
				out, err := cmd.CombinedOutput()
				if err != nil {
					b.Fatalf("%v:\n%s", err, out)
				}
				var heap, values, hwm int64
				for line := range strings.Lines(string(out)) {
					if _, err := fmt.Sscanf(line, "FEEDBENCH heap=%d values=%d peak-rss-kib=%d", &heap, &values, &hwm); err == nil {
						break
					}
				}
				if values == 0 || hwm == 0 {
					b.Fatalf("the child said nothing:\n%s", out)
				}
				b.ReportMetric(float64(hwm)/1024, "peak-RSS-MiB")
				b.ReportMetric(float64(heap)/float64(values), "heap-B/value")
			}
		})
	}
}

// loadLarge loads the feed in dir as a Store or a Source.
func loadLarge(tb testing.TB, kind, dir string) searcher {
	tb.Helper()
	if kind == "Store" {
		s, err := feed.Load(dir)
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	s, err := feed.NewSource(feed.SourceConfig{Name: "bench", Location: dir})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Refresh(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if st := s.Status(); st.Values != benchEvents*benchPerEvent {
		tb.Fatalf("loaded %+v", st)
	}
	return s
}

// TestLargeFeedChild is BenchmarkLargeFeed's child process: it loads FEEDBENCH_DIR as a
// FEEDBENCH_KIND and prints the live heap per value. Without FEEDBENCH_DIR it does nothing.
func TestLargeFeedChild(t *testing.T) {
	dir := os.Getenv("FEEDBENCH_DIR")
	if dir == "" {
		t.Skip("run by BenchmarkLargeFeed")
	}
	dir = filepath.Clean(dir)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	keep := loadLarge(t, os.Getenv("FEEDBENCH_KIND"), dir)
	values := benchEvents * benchPerEvent
	runtime.GC()
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(keep)
	// VmHWM, not getrusage's maxrss: a child's maxrss counts the parent's pages from
	// before exec, and the parent holds both indexes.
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var hwm int64
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &hwm); err != nil {
				t.Fatal(err)
			}
		}
	}
	fmt.Printf("FEEDBENCH heap=%d values=%d peak-rss-kib=%d\n", ms.HeapAlloc-base, values, hwm)
}
