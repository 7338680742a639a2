package loadbench

import (
	"bytes"
	"compress/gzip"
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
)

// profileBytes is a gzipped profile.proto with the given string table, sample types
// (string indexes) and samples, as runtime/pprof writes them.
func profileBytes(t *testing.T, strs []string, types []int64, samples [][]byte) []byte {
	t.Helper()
	var p []byte
	for _, typ := range types {
		var vt []byte
		vt = protowire.AppendTag(vt, 1, protowire.VarintType)
		vt = protowire.AppendVarint(vt, uint64(typ))
		p = protowire.AppendTag(p, 1, protowire.BytesType)
		p = protowire.AppendBytes(p, vt)
	}
	for _, s := range samples {
		p = protowire.AppendTag(p, 2, protowire.BytesType)
		p = protowire.AppendBytes(p, s)
	}
	for _, s := range strs {
		p = protowire.AppendTag(p, 6, protowire.BytesType)
		p = protowire.AppendString(p, s)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sampleBytes is one Sample: a location, its values (packed or not) and labels (key, str
// string indexes, pairwise).
func sampleBytes(packed bool, values []int64, labels ...int64) []byte {
	var s []byte
	s = protowire.AppendTag(s, 1, protowire.VarintType)
	s = protowire.AppendVarint(s, 7)
	if packed {
		var v []byte
		for _, x := range values {
			v = protowire.AppendVarint(v, uint64(x))
		}
		s = protowire.AppendTag(s, 2, protowire.BytesType)
		s = protowire.AppendBytes(s, v)
	} else {
		for _, x := range values {
			s = protowire.AppendTag(s, 2, protowire.VarintType)
			s = protowire.AppendVarint(s, uint64(x))
		}
	}
	for i := 0; i+1 < len(labels); i += 2 {
		var l []byte
		l = protowire.AppendTag(l, 1, protowire.VarintType)
		l = protowire.AppendVarint(l, uint64(labels[i]))
		l = protowire.AppendTag(l, 2, protowire.VarintType)
		l = protowire.AppendVarint(l, uint64(labels[i+1]))
		s = protowire.AppendTag(s, 3, protowire.BytesType)
		s = protowire.AppendBytes(s, l)
	}
	return s
}

func TestCPUByLabel(t *testing.T) {
	// 0 "", 1 samples, 2 count, 3 cpu, 4 nanoseconds, 5 relaybench, 6 relay, 7 fake-misp, 8 other
	strs := []string{"", "samples", "count", "cpu", "nanoseconds", labelKey, partRelay, partMISP, "other"}
	prof := profileBytes(t, strs, []int64{1, 3}, [][]byte{
		sampleBytes(false, []int64{2, 20e6}, 5, 6),
		sampleBytes(true, []int64{1, 10e6}, 5, 6),
		sampleBytes(false, []int64{3, 30e6}, 8, 6, 5, 7), // another key first, then ours
		sampleBytes(true, []int64{4, 40e6}),              // no label: the runtime
		sampleBytes(false, []int64{5, 50e6}, 8, 7),       // only another key
	})
	got, err := cpuByLabel(bytes.NewReader(prof), labelKey)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]partCPU{
		partRelay: {samples: 3, nanos: 30e6},
		partMISP:  {samples: 3, nanos: 30e6},
		"":        {samples: 9, nanos: 90e6},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(partCPU{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestCPUByLabelRefusesWhatIsNotACPUProfile(t *testing.T) {
	strs := []string{"", "alloc_objects", "count"}
	for name, raw := range map[string][]byte{
		"not gzip":       []byte("not a profile"),
		"no cpu type":    profileBytes(t, strs, []int64{1}, [][]byte{sampleBytes(false, []int64{1})}),
		"missing values": profileBytes(t, []string{"", "samples", "cpu"}, []int64{1, 2}, [][]byte{sampleBytes(false, []int64{1})}),
		"truncated": func() []byte {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write([]byte{0x12, 0x20, 0x08}) // a sample announcing 32 bytes, holding 1
			_ = zw.Close()
			return buf.Bytes()
		}(),
	} {
		if got, err := cpuByLabel(bytes.NewReader(raw), labelKey); err == nil {
			t.Errorf("%s: no error, got %v", name, got)
		}
	}
}

// The split charges CPU to the part of the goroutine that spent it, goroutines started under
// a part included. The test burns CPU until the process has used 300 ms of it (CPU time, so a
// busy machine only makes it last longer).
func TestCPUSplitByPart(t *testing.T) {
	if _, ok := processCPU(); !ok {
		t.Skip("no process CPU time on this platform")
	}
	stop, err := startCPUSplit()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := startCPUSplit(); err == nil {
		t.Error("a second CPU split started while the first runs")
	}
	var burnt time.Duration
	withPart(context.Background(), partMISP, func(context.Context) {
		done := make(chan struct{})
		go func() { // inherits the label
			defer close(done)
			start, _ := processCPU()
			x := uint64(1)
			for now := start; now-start < 300*time.Millisecond; now, _ = processCPU() {
				for range 1 << 16 {
					x = x*6364136223846793005 + 1442695040888963407
				}
				burnt = now - start
			}
			sink = x
		}()
		<-done
	})
	shares, samples, why := stop()
	if shares == nil {
		t.Fatalf("no shares: %s", why)
	}
	if samples < 10 || shares[partMISP] < 0.5 {
		t.Errorf("%d samples, shares %v after burning %v: want most of them %s", samples, shares, burnt, partMISP)
	}
}

var sink uint64
