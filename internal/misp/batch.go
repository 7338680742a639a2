package misp

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/mispjson"
)

// Lookup answers several queries with one restSearch for all of them where it can: MISP's
// value filter takes a list and matches each element exactly as it matches one value alone,
// against either half of an attribute's value, so the relay gives each returned attribute to
// the queries whose value it holds (and whose types include its type). Each query's answer is
// the one it gets alone (checked against a real MISP 2.5.1 by internal/misplive):
//
//   - its events are capped at its own Limit, and once its cap is reached it takes what it
//     would have taken alone (attributes of the events it holds, up to the first attribute of
//     another event, or the end of that page);
//   - a page holds PageSize attributes per value (up to 10,000), so the first page usually
//     holds every answer; the batch pages on while any query may still get more; queries still
//     open when the pages run out (MaxPages full pages: a value in thousands of attributes
//     crowding the others out) are asked again alone, with their own pages;
//   - a batch whose answer goes over MISP_MAX_ANSWER_BYTES, or holds an attribute over
//     MISP_MAX_ATTRIBUTE_BYTES, is split in two and each half asked, down to single queries,
//     which fail or retry without sightings as a lookup alone does;
//   - values outside ASCII are asked alone: MISP compares values with its database's
//     collation (accents and letter case ignored), which the relay does not reproduce, and an
//     attribute that matches none of the batch's values for the same reason sends every query
//     of the batch to be asked alone.
//
// Unsafe values (see intel.SafeValue) are never sent: their Result is an error.
func (c *Client) Lookup(ctx context.Context, key string, qs []intel.Query) []intel.Result {
	const op = "search"
	out := make([]intel.Result, len(qs))
	if err := checkKey(op, key); err != nil {
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	var batches [2][]int // the queries searched together: without and with Warnings
	var alone []int
	for i, q := range qs {
		switch {
		case !intel.SafeValue(q.Value):
			// MISP would read such a value as a pattern or drop it and return everything.
			out[i].Err = c.scrub(c.fail(op, 0, ErrUnexpected, "refusing to search for a value MISP would not match exactly", key))
		case !ascii(q.Value):
			alone = append(alone, i)
		case q.Warnings:
			batches[1] = append(batches[1], i)
		default:
			batches[0] = append(batches[0], i)
		}
	}
	var wg sync.WaitGroup
	for _, i := range alone {
		wg.Go(func() { out[i].Events, out[i].Err = c.searchOne(ctx, key, qs[i]) })
	}
	if warned := batches[1]; len(batches[0]) > 0 && len(warned) > 0 {
		wg.Go(func() { c.searchBatch(ctx, key, qs, warned, out) })
		batches[1] = nil
	}
	for _, b := range batches {
		c.searchBatch(ctx, key, qs, b, out)
	}
	wg.Wait()
	return out
}

// searchBatch answers the queries qs[idx] into out: one search for all, split or asked alone
// as Lookup says.
func (c *Client) searchBatch(ctx context.Context, key string, qs []intel.Query, idx []int, out []intel.Result) {
	const op = "search"
	switch len(idx) {
	case 0:
		return
	case 1:
		i := idx[0]
		out[i].Events, out[i].Err = c.searchOne(ctx, key, qs[i])
		return
	}
	b := newBatch(qs, idx)
	slotCtx, done, err := c.begin(ctx, op, key)
	var res pagesResult
	if err == nil {
		values := b.values()
		// Lookup batches queries of one Warnings together.
		with := include{sightings: true, warnings: qs[idx[0]].Warnings}
		res, err = c.searchPages(slotCtx, op, key, values, b.types(), b, with, c.batchPage(len(values)))
		done()
	}
	switch {
	case res.bigAnswer || res.bigAttribute:
		half := len(idx) / 2
		var wg sync.WaitGroup
		wg.Go(func() { c.searchBatch(ctx, key, qs, idx[:half], out) })
		c.searchBatch(ctx, key, qs, idx[half:], out)
		wg.Wait()
		return
	case err != nil:
		err = c.scrub(err)
		for _, i := range idx {
			out[i].Err = err
		}
		return
	}
	var again []int
	for j, i := range idx {
		if b.impure || (res.exhausted && !b.closed[j]) {
			again = append(again, i)
			continue
		}
		out[i].Events = b.cols[j].events
	}
	var wg sync.WaitGroup
	for _, i := range again {
		wg.Go(func() { out[i].Events, out[i].Err = c.searchOne(ctx, key, qs[i]) })
	}
	wg.Wait()
}

// maxBatchPage bounds the attributes of one page of a request's search: what 50 pages of a
// lookup alone read at most.
const maxBatchPage = DefaultMaxPages * DefaultPageSize

// batchPage is the page size of a search for n values: a page for each, as each would get
// asked alone, so that a request's first page usually holds every answer (one round trip), up
// to maxBatchPage.
func (c *Client) batchPage(n int) int { return max(c.pageSize, min(c.pageSize*n, maxBatchPage)) }

// batch is the sink of a search for several queries: one collector per query.
type batch struct {
	qs     []intel.Query
	cols   []*collector
	closed []bool           // the query takes nothing more: what it would have read alone is read
	byKey  map[string][]int // matchKey of each query's value -> the queries asking it
	// impure: an attribute matched none of the values as the relay compares them (MISP's
	// collation did): the batch's answers cannot be trusted to be each query's.
	impure bool
}

func newBatch(qs []intel.Query, idx []int) *batch {
	b := &batch{byKey: map[string][]int{}}
	for j, i := range idx {
		b.qs = append(b.qs, qs[i])
		b.cols = append(b.cols, newCollector(qs[i].Limit))
		b.closed = append(b.closed, false)
		k := matchKey(qs[i].Value)
		b.byKey[k] = append(b.byKey[k], j)
	}
	return b
}

// values is the value filter: every distinct value (as MISP compares them), in the queries'
// order.
func (b *batch) values() []string {
	var vs []string
	seen := map[string]bool{}
	for _, q := range b.qs {
		if k := matchKey(q.Value); !seen[k] {
			seen[k] = true
			vs = append(vs, q.Value)
		}
	}
	return vs
}

// types is the type filter: every type a query asks for, or none (an empty list, which MISP
// ignores) when one of them asks for every type.
func (b *batch) types() []string {
	var ts []string
	for _, q := range b.qs {
		if len(q.Types) == 0 {
			return []string{}
		}
		for _, t := range q.Types {
			if !slices.Contains(ts, t) {
				ts = append(ts, t)
			}
		}
	}
	return ts
}

func (b *batch) add(a *mispjson.Attribute) bool {
	typ := a.Type.Text()
	v1, v2 := halves(typ, a.Value.Text())
	matched := false
	for _, half := range []string{v1, v2} {
		if half == "" {
			continue
		}
		for _, j := range b.byKey[matchKey(half)] {
			matched = true
			if b.closed[j] || (len(b.qs[j].Types) > 0 && !slices.Contains(b.qs[j].Types, typ)) {
				continue
			}
			if !b.cols[j].add(a) {
				b.closed[j] = true // alone, the query would have stopped reading here
			}
		}
		if v1 == v2 {
			break
		}
	}
	if !matched {
		b.impure = true
		return false
	}
	return !b.allClosed()
}

// enough closes the queries whose cap is reached (alone, they would read no further page).
func (b *batch) enough() bool {
	for j, col := range b.cols {
		if col.full() {
			b.closed[j] = true
		}
	}
	return b.allClosed()
}

func (b *batch) allClosed() bool { return !slices.Contains(b.closed, false) }

// halves splits a value as MISP fills its value1 and value2 columns: a composite type's value
// ("domain|ip", "filename|md5", and malware-sample's "name|md5") at its pipes, the first two
// pieces; any other value whole, with an empty value2.
func halves(typ, value string) (v1, v2 string) {
	if !intel.Composite(typ) {
		return value, ""
	}
	v1, rest, _ := strings.Cut(value, "|")
	v2, _, _ = strings.Cut(rest, "|")
	return v1, v2
}

// matchKey is how MISP's value filter compares a value, for ASCII values: letter case
// ignored, and an IPv6 address in its canonical form (MISP normalises both sides).
func matchKey(v string) string {
	if a, err := netip.ParseAddr(v); err == nil && a.Is6() {
		return a.String()
	}
	return strings.ToLower(v)
}

// ascii reports whether v is plain ASCII.
func ascii(v string) bool {
	for i := range len(v) {
		if v[i] >= 0x80 {
			return false
		}
	}
	return true
}
