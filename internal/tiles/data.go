package tiles

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// Data is one tile's answer for one period, as /tiles/tile-data gives it: the common fields
// and the type's own (Keys and KeyType for bar charts, Labels for donuts).
type Data struct {
	ObservedTime TimeRange  `json:"observed_time"`
	ValidTime    TimeRange  `json:"valid_time"`
	CacheScope   string     `json:"cache_scope"`
	KeyType      string     `json:"key_type,omitempty"`
	Keys         []Key      `json:"keys,omitempty"`
	Labels       [][]string `json:"labels,omitempty"`
	// Data is []Metric, []Bar, []Slice or []string (markdown lines), by the tile's type.
	Data any `json:"data"`
}

// TimeRange is an ISO 8601 span, as XDR reads observed_time and valid_time.
type TimeRange struct {
	StartTime string `json:"start_time"`
	EndTime   string `json:"end_time"`
}

// Metric is one figure of a metric_group.
type Metric struct {
	Icon      string `json:"icon"`
	Label     string `json:"label"`
	Value     int    `json:"value"`
	ValueUnit string `json:"value_unit"`
	Tooltip   string `json:"tooltip"`
}

// Key is one series of a vertical_bar_chart.
type Key struct {
	Key   string `json:"key"`
	Label string `json:"label"`
}

// Bar is one bucket of a vertical_bar_chart: Value is the sum of Values.
type Bar struct {
	Key    int64      `json:"key"` // the bucket's start, Unix milliseconds (key_type timestamp)
	Label  string     `json:"label"`
	Value  int        `json:"value"`
	Values []BarValue `json:"values"`
}

// BarValue is one series' part of a bar.
type BarValue struct {
	Key   string `json:"key"`
	Value int    `json:"value"`
}

// Slice is one segment of a donut_graph: Key indexes Labels[0].
type Slice struct {
	Key   int `json:"key"`
	Value int `json:"value"`
}

// Bounds of the tiles' lists, and of the calls one tile makes at once: a dashboard asks for
// every tile together, and its counts must leave the MISP's slots to lookups.
const (
	maxCalls  = 2
	maxTags   = 10
	maxLatest = 10
)

// compute asks src for the tile id over sp. ui is the base of links into MISP ("" for none).
func compute(ctx context.Context, src Source, key, id string, sp span, ui string) (*Data, error) {
	d := &Data{}
	var err error
	switch id {
	case Summary:
		d.Data, err = summary(ctx, src, key, sp)
	case ThreatLevels:
		err = threatLevels(ctx, src, key, sp, d)
	case AttributeTypes:
		err = attributeTypes(ctx, src, key, sp, d)
	case TopTags:
		err = topTags(ctx, src, key, sp, d)
	case LatestEvents:
		d.Data, err = latestEvents(ctx, src, key, sp, ui)
	default:
		return nil, unknownTile(id)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// summary is misp-summary: four figures of the period, each with the one before.
func summary(ctx context.Context, src Source, key string, sp span) ([]Metric, error) {
	type figure struct {
		label, icon string
		count       func(context.Context, Window) (int, error)
	}
	figures := []figure{
		{"Events", "warning", func(ctx context.Context, w Window) (int, error) { return src.CountEvents(ctx, key, w) }},
		{"Attributes", "list", func(ctx context.Context, w Window) (int, error) {
			return src.CountAttributes(ctx, key, AttributeFilter{Window: w})
		}},
		{"IDS attributes", "target", func(ctx context.Context, w Window) (int, error) {
			return src.CountAttributes(ctx, key, AttributeFilter{Window: w, IDSOnly: true})
		}},
		{"Sightings", "eye", func(ctx context.Context, w Window) (int, error) { return src.CountSightings(ctx, key, w) }},
	}
	cur, prev := make([]int, len(figures)), make([]int, len(figures))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxCalls)
	for i, f := range figures {
		g.Go(func() (err error) { cur[i], err = f.count(gctx, sp.cur); return err })
		g.Go(func() (err error) { prev[i], err = f.count(gctx, sp.prev); return err })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]Metric, len(figures))
	for i, f := range figures {
		out[i] = Metric{
			Icon: f.icon, Label: f.label, Value: cur[i], ValueUnit: "integer",
			Tooltip: fmt.Sprintf("%d in the last %s; %d in the %s before (%s).", cur[i], sp.words, prev[i], sp.words, change(cur[i], prev[i])),
		}
	}
	return out, nil
}

// change words the difference between two figures.
func change(cur, prev int) string {
	switch {
	case cur == prev:
		return "no change"
	case prev == 0:
		return fmt.Sprintf("+%d", cur)
	}
	pct := (cur - prev) * 100 / prev
	if cur > prev {
		return fmt.Sprintf("+%d%%", pct)
	}
	return fmt.Sprintf("%d%%", pct)
}

// threatLevelKeys are the bar chart's series, MISP's threat levels 1 to 4.
var threatLevelKeys = []Key{{"high", "High"}, {"medium", "Medium"}, {"low", "Low"}, {"undefined", "Undefined"}}

// levelIndex maps a threat level to its index in threatLevelKeys.
func levelIndex(level int) int {
	if level >= 1 && level <= 3 {
		return level - 1
	}
	return 3
}

// threatLevels is misp-threat-levels: one bar per bucket, split by threat level.
func threatLevels(ctx context.Context, src Source, key string, sp span, d *Data) error {
	events, err := src.Events(ctx, key, sp.cur)
	if err != nil {
		return err
	}
	counts := make([][4]int, sp.nBuckets)
	for _, e := range events {
		if !sp.cur.Contains(e.Timestamp) {
			continue // a source must not, but a bar outside the chart would be worse
		}
		b := int(e.Timestamp.Sub(sp.cur.From) / sp.bucket)
		counts[b][levelIndex(e.ThreatLevel)]++
	}
	bars := make([]Bar, sp.nBuckets)
	for i := range bars {
		start := sp.cur.From.Add(time.Duration(i) * sp.bucket)
		label := start.Format("Jan 2")
		if sp.bucket < 24*time.Hour {
			label = start.Format("Jan 2 15:04")
		}
		bar := Bar{Key: start.UnixMilli(), Label: label, Values: make([]BarValue, len(threatLevelKeys))}
		for j, k := range threatLevelKeys {
			bar.Values[j] = BarValue{Key: k.Key, Value: counts[i][j]}
			bar.Value += counts[i][j]
		}
		bars[i] = bar
	}
	d.KeyType, d.Keys, d.Data = "timestamp", threatLevelKeys, bars
	return nil
}

// TypeGroup is one kind of indicator of misp-attribute-types: a label and MISP's types.
type TypeGroup struct {
	Label string
	Types []string // nil for the last group, "Other": every type the others do not name
}

// TypeGroups are the groups of misp-attribute-types, in the donut's order. Composite types
// go where their indicator half does (ip-dst|port is network, filename|md5 a hash).
func TypeGroups() []TypeGroup {
	return []TypeGroup{
		{"Network", []string{
			"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain", "domain|ip", "hostname",
			"hostname|port", "AS", "mac-address", "ja3-fingerprint-md5", "jarm-fingerprint",
			"hassh-md5", "hasshserver-md5", "snort", "bro", "zeek", "community-id", "x509-fingerprint-sha1",
			"x509-fingerprint-md5", "x509-fingerprint-sha256",
		}},
		{"File hashes", []string{
			"md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha512/224", "sha512/256",
			"sha3-224", "sha3-256", "sha3-384", "sha3-512", "ssdeep", "imphash", "telfhash",
			"impfuzzy", "authentihash", "vhash", "pehash", "tlsh", "cdhash", "malware-sample",
			"filename|md5", "filename|sha1", "filename|sha224", "filename|sha256", "filename|sha384",
			"filename|sha512", "filename|sha512/224", "filename|sha512/256", "filename|sha3-224",
			"filename|sha3-256", "filename|sha3-384", "filename|sha3-512", "filename|authentihash",
			"filename|vhash", "filename|ssdeep", "filename|tlsh", "filename|imphash",
			"filename|impfuzzy", "filename|pehash",
		}},
		{"URLs", []string{"url", "uri", "link"}},
		{"Email", []string{
			"email", "email-src", "email-dst", "email-subject", "email-attachment", "email-body",
			"email-header", "email-reply-to", "email-x-mailer", "email-message-id",
			"email-mime-boundary", "email-thread-index", "email-src-display-name",
			"email-dst-display-name", "whois-registrant-email",
		}},
		{"Other", nil},
	}
}

// attributeTypes is misp-attribute-types: IDS attributes of the period per type group, one
// count per named group and one of all, "Other" being the difference.
func attributeTypes(ctx context.Context, src Source, key string, sp span, d *Data) error {
	groups := TypeGroups()
	counts := make([]int, len(groups))
	var all int
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxCalls)
	for i, grp := range groups[:len(groups)-1] {
		g.Go(func() (err error) {
			counts[i], err = src.CountAttributes(gctx, key, AttributeFilter{Window: sp.cur, IDSOnly: true, Types: grp.Types})
			return err
		})
	}
	g.Go(func() (err error) {
		all, err = src.CountAttributes(gctx, key, AttributeFilter{Window: sp.cur, IDSOnly: true})
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	named := 0
	for _, n := range counts[:len(counts)-1] {
		named += n
	}
	counts[len(counts)-1] = max(all-named, 0) // attributes added between the counts: never negative
	labels := make([]string, len(groups))
	out := make([]Slice, len(groups))
	for i, grp := range groups {
		labels[i] = grp.Label
		out[i] = Slice{Key: i, Value: counts[i]}
	}
	d.Labels, d.Data = [][]string{labels}, out
	return nil
}

// topTags is misp-top-tags: the tags most used by the period's events, galaxy clusters
// first, each by the number of events carrying it.
func topTags(ctx context.Context, src Source, key string, sp span, d *Data) error {
	events, err := src.Events(ctx, key, sp.cur)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, e := range events {
		seen := map[string]bool{}
		for _, t := range e.Tags {
			if t != "" && !seen[t] {
				seen[t] = true
				counts[t]++
			}
		}
	}
	type tagCount struct {
		name   string
		n      int
		galaxy bool
	}
	list := make([]tagCount, 0, len(counts))
	for name, n := range counts {
		list = append(list, tagCount{name, n, strings.HasPrefix(name, "misp-galaxy:")})
	}
	slices.SortFunc(list, func(a, b tagCount) int {
		if a.galaxy != b.galaxy {
			if a.galaxy {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.name, b.name))
	})
	list = list[:min(len(list), maxTags)]
	labels := make([]string, len(list))
	out := make([]Slice, len(list))
	for i, t := range list {
		labels[i], out[i] = t.name, Slice{Key: i, Value: t.n}
	}
	d.Labels, d.Data = [][]string{labels}, out
	return nil
}

// latestEvents is misp-latest-events: a markdown table of the newest High events of the
// period, then the newest Medium ones, at most maxLatest.
func latestEvents(ctx context.Context, src Source, key string, sp span, ui string) ([]string, error) {
	events, err := src.Events(ctx, key, sp.cur)
	if err != nil {
		return nil, err
	}
	var picked []EventMeta
	for _, e := range events {
		if e.ThreatLevel == 1 || e.ThreatLevel == 2 {
			picked = append(picked, e)
		}
	}
	// Stable: an event several sources hold comes in the sources' order (the MISPs first).
	slices.SortStableFunc(picked, func(a, b EventMeta) int {
		return cmp.Or(cmp.Compare(a.ThreatLevel, b.ThreatLevel), b.Timestamp.Compare(a.Timestamp), strings.Compare(a.UUID, b.UUID))
	})
	picked = picked[:min(len(picked), maxLatest)]
	if len(picked) == 0 {
		return []string{fmt.Sprintf("No event of High or Medium threat level was added or changed in the last %s.", sp.words)}, nil
	}
	lines := []string{
		"| Threat | Event | Organisation | Date | Changed | Attributes |",
		"| --- | --- | --- | --- | --- | ---: |",
	}
	for _, e := range picked {
		info := mdCell(e.Info)
		base := ui
		if e.Linked {
			base = e.UI // the event's own source's MISP, or none (a feed)
		}
		if base != "" && isUUID(e.UUID) { // anything else in the link could end it and start another
			info = "[" + info + "](" + strings.TrimRight(base, "/") + "/events/view/" + e.UUID + ")"
		}
		lines = append(lines, fmt.Sprintf("| %s | %s | %s | %s | %s | %d |",
			threatLevelKeys[levelIndex(e.ThreatLevel)].Label, info, mdCell(e.Org), mdCell(e.Date),
			e.Timestamp.UTC().Format("2006-01-02 15:04"), e.AttributeCount))
	}
	return lines, nil
}

// mdCell makes text safe in one markdown table cell: no line breaks, no column or link
// syntax, bounded.
func mdCell(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 120 {
		s = string(r[:119]) + "…"
	}
	return strings.NewReplacer(`\`, `\\`, "|", `\|`, "[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;", "`", "\\`", "*", `\*`, "_", `\_`).Replace(s)
}

// isUUID reports whether s is a UUID in its textual form, the only thing the relay puts in
// a link after /events/view/.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return true
}
