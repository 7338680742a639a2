package loadbench

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/pprof"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// The relay, its fake MISP and the clients share one process, so the process's CPU time is
// theirs together. To tell the relay's own share, every goroutine is labelled with the part it
// belongs to (goroutines inherit their creator's labels: a server's connection goroutines get
// the label of the goroutine that started the server, an HTTP client's connection goroutines
// that of the goroutine that dialled), and a CPU profile of the timed window is split by
// label. What carries no label is the Go runtime's own work: background GC workers (GC
// assists are charged to the goroutine that allocates), the scheduler, timers.
const (
	labelKey     = "relaybench"
	partRelay    = "relay"     // the relay's server, handlers, MISP client, cache
	partMISP     = "fake-misp" // the fake MISP's server and handlers
	partClients  = "clients"   // the load's clients and the benchmark's sampling
	partUnlabled = "runtime"   // background GC, scheduler: not attributable to one part
)

// withPart runs f with its goroutine, and every goroutine it starts, labelled as part.
func withPart(ctx context.Context, part string, f func(context.Context)) {
	pprof.Do(ctx, pprof.Labels(labelKey, part), f)
}

// cpuUse is the CPU the process used over the timed window, and how it splits.
type cpuUse struct {
	// total is the process's CPU time (user + system, every thread) over the timed window;
	// 0 when the platform does not say.
	total time.Duration
	// shares maps each part to its fraction of the CPU window's profile samples; nil when
	// no profile could be taken (why says why).
	shares map[string]float64
	// samples is the number of CPU profile samples the shares come from (one per 10 ms of
	// CPU): their precision is about 1/√(samples × share).
	samples int64
	why     string
}

// startCPUSplit starts a CPU profile of the process; stop ends it and returns the share of
// each part in it. It fails when another CPU profile (-cpuprofile) is running.
func startCPUSplit() (stop func() (shares map[string]float64, samples int64, why string), err error) {
	var prof bytes.Buffer
	if err := pprof.StartCPUProfile(&prof); err != nil {
		return nil, fmt.Errorf("the CPU profiler was busy (%w)", err)
	}
	return func() (map[string]float64, int64, string) {
		pprof.StopCPUProfile()
		byPart, err := cpuByLabel(&prof, labelKey)
		if err != nil {
			return nil, 0, "the CPU profile did not parse: " + err.Error()
		}
		var sum, samples int64
		for _, v := range byPart {
			sum += v.nanos
			samples += v.samples
		}
		if sum == 0 {
			return nil, 0, "no CPU profile sample in the CPU window"
		}
		shares := map[string]float64{}
		for part, v := range byPart {
			if part == "" {
				part = partUnlabled
			}
			shares[part] += float64(v.nanos) / float64(sum)
		}
		return shares, samples, ""
	}, nil
}

// partCPU is what a profile holds for one label value.
type partCPU struct{ samples, nanos int64 }

// cpuByLabel reads a gzipped pprof CPU profile (profile.proto, as runtime/pprof writes it) and
// sums its samples' CPU by the value of the label key ("" for samples without it). Only the
// fields needed are read: sample_type, sample (value, label) and string_table.
func cpuByLabel(r io.Reader, key string) (map[string]partCPU, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 256<<20)) // a 5 s profile is a few KiB
	if err != nil {
		return nil, err
	}
	type sample struct {
		values    []int64
		labelKeys []int64 // string indexes, pairwise with labelStrs
		labelStrs []int64
	}
	var (
		strs    []string
		typeIdx []int64 // sample_type[i].type, as string indexes
		samples []sample
	)
	err = protoEach(raw, func(num protowire.Number, typ protowire.Type, msg []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case 1: // sample_type: ValueType{type = 1, unit = 2}
			fields, err := protoInts(msg)
			if err != nil {
				return err
			}
			typeIdx = append(typeIdx, firstOr(fields[1], -1))
		case 2: // sample: Sample{location_id = 1, value = 2, label = 3}
			var s sample
			err := protoEach(msg, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				switch {
				case num == 2 && typ == protowire.VarintType:
					s.values = append(s.values, int64(x)) //nolint:gosec // protobuf int64 travels as its two's complement
				case num == 2 && typ == protowire.BytesType: // packed
					for p := v; len(p) > 0; {
						x, n := protowire.ConsumeVarint(p)
						if n < 0 {
							return fmt.Errorf("malformed profile: %w", protowire.ParseError(n))
						}
						s.values = append(s.values, int64(x)) //nolint:gosec // as above
						p = p[n:]
					}
				case num == 3 && typ == protowire.BytesType: // Label{key = 1, str = 2, num = 3}
					fields, err := protoInts(v)
					if err != nil {
						return err
					}
					s.labelKeys = append(s.labelKeys, firstOr(fields[1], 0))
					s.labelStrs = append(s.labelStrs, firstOr(fields[2], 0))
				}
				return nil
			})
			samples = append(samples, s)
			return err
		case 6: // string_table
			strs = append(strs, string(msg))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	str := func(i int64) string {
		if i < 0 || i >= int64(len(strs)) {
			return ""
		}
		return strs[i]
	}
	cpu := -1
	for i, t := range typeIdx {
		if str(t) == "cpu" {
			cpu = i
		}
	}
	if cpu < 0 {
		return nil, errors.New("the profile has no cpu sample type")
	}
	out := map[string]partCPU{}
	for _, s := range samples {
		if cpu >= len(s.values) {
			return nil, errors.New("a sample has fewer values than sample types")
		}
		part := ""
		for i, k := range s.labelKeys {
			if str(k) == key {
				part = str(s.labelStrs[i])
			}
		}
		p := out[part]
		p.samples += s.values[0]
		p.nanos += s.values[cpu]
		out[part] = p
	}
	return out, nil
}

// protoEach calls f for every field of the protobuf message b: v is a length-delimited
// field's bytes, x a varint's value (other wire types are skipped).
func protoEach(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("malformed profile: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("malformed profile: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// protoInts reads the varint fields of a small message, by field number.
func protoInts(b []byte) (map[protowire.Number][]int64, error) {
	out := map[protowire.Number][]int64{}
	err := protoEach(b, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
		if typ == protowire.VarintType {
			out[num] = append(out[num], int64(x)) //nolint:gosec // protobuf int64 travels as its two's complement
		}
		return nil
	})
	return out, err
}

func firstOr(x []int64, def int64) int64 {
	if len(x) == 0 {
		return def
	}
	return x[0]
}
