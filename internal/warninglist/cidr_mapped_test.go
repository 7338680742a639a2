package warninglist_test

import (
	"slices"
	"testing"
)

// TestMappedEntriesKeepTheirFamily: an IPv4-mapped entry (::ffff:0:0/96, the mapped range
// of special-purpose IPv6 lists) covers IPv4-mapped values only; read as 0.0.0.0/0 it would
// list every IPv4 address. An IPv4-mapped value is also the IPv4 address it maps.
func TestMappedEntriesKeepTheirFamily(t *testing.T) {
	s := loadLists(t, map[string]string{
		"v6special": `{"name":"IPv6 special","type":"cidr","version":1,"list":["::ffff:0:0/96","64:ff9b::/96"]}`,
		"dns":       `{"name":"dns","type":"cidr","version":1,"list":["8.8.8.8/32","2001:4860:4860::8888"]}`,
	})
	for _, tc := range []struct {
		v    string
		want []string
	}{
		{"8.8.8.8", []string{"dns"}},
		{"::ffff:8.8.8.8", []string{"dns", "IPv6 special"}},
		{"2001:4860:4860:0:0:0:0:8888", []string{"dns"}},
		{"2001:4860:4860::8888%eth0", []string{"dns"}},
		{"2001:4860:4860::8888/128", []string{"dns"}},
		{"2001:4860:4860::/48", nil},
		{"8.8.8.0/24", nil},
		{"198.51.100.7", nil}, // an ordinary IPv4 address: MISP checks IPv4 values against IPv4 entries only
	} {
		got := names(s.Lookup("ip-dst", tc.v))
		if !slices.Equal(got, tc.want) {
			t.Errorf("Lookup(%q) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
