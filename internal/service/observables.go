package service

import (
	"strings"
	"unicode/utf8"

	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// observableKind describes one supported CTIM observable type.
type observableKind struct {
	// human is how links and actions name the type ("Search events with this IP").
	human string
	// mispTypes are the MISP attribute types searched for it, composites included: MISP
	// matches either half of "a|b", so a search for an md5 finds "filename|md5" attributes.
	mispTypes []string
	// hash types never expire: their judgements are valid until CTIM's end of time.
	hash bool
	// caseless: MISP keeps such values in lower case, in its attributes (its
	// AttributeValidationTool lower-cases domains, hostnames, e-mail addresses and hashes,
	// the hash half of "filename|md5" too) and in its hostname lists, so its warninglists are
	// asked about the lower-case spelling (observable.checked).
	caseless bool
}

var (
	ipTypes       = []string{"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip"}
	hostnameTypes = []string{"domain", "domain|ip", "hostname", "hostname|port"}
)

// kinds is the one table of supported observable types (lower-case CTIM names). Types not
// in it are ignored, as XDR expects from a module that does not know them.
var kinds = map[string]observableKind{
	"ip":        {human: "IP", mispTypes: ipTypes},
	"ipv6":      {human: "IPv6", mispTypes: ipTypes},
	"domain":    {human: "domain", mispTypes: hostnameTypes, caseless: true},
	"hostname":  {human: "hostname", mispTypes: hostnameTypes, caseless: true},
	"url":       {human: "URL", mispTypes: []string{"url", "uri", "link"}},
	"md5":       {human: "MD5", mispTypes: []string{"md5", "filename|md5", "malware-sample"}, hash: true, caseless: true},
	"sha1":      {human: "SHA1", mispTypes: []string{"sha1", "filename|sha1"}, hash: true, caseless: true},
	"sha256":    {human: "SHA256", mispTypes: []string{"sha256", "filename|sha256"}, hash: true, caseless: true},
	"sha512":    {human: "SHA512", mispTypes: []string{"sha512", "filename|sha512"}, hash: true, caseless: true},
	"email":     {human: "email", mispTypes: []string{"email", "email-src", "email-dst", "target-email", "whois-registrant-email"}, caseless: true},
	"file_name": {human: "file name", mispTypes: []string{"filename", "filename|md5", "filename|sha1", "filename|sha256", "filename|sha512", "malware-sample"}},
}

// observable is a supported, de-duplicated observable.
type observable struct {
	Type  string
	Value string // trimmed
	kind  observableKind
	// safe says MISP reads Value as exactly that value (intel.SafeValue); only such values
	// are looked up or linked. urlscan.io has no such syntax: any URL can be scanned.
	safe bool
}

func (o observable) ctim() gen.Observable {
	return gen.Observable{Type: gen.ObservableType(o.Type), Value: o.Value}
}

// maxValueLength is the longest value the relay looks up, in characters: the original relay's
// limit, as a skip rather than a refusal, so that one such value in a batch does not fail the
// others.
const maxValueLength = 4096

// candidates filters the request's observables: unsupported types, blank values and values
// over maxValueLength are dropped, values are trimmed, and duplicates by (type, value) are
// removed keeping first-seen order, so answers follow the input order.
func candidates(in []gen.ObservableInput) []observable {
	out := make([]observable, 0, len(in))
	seen := make(map[[2]string]struct{}, len(in))
	for _, o := range in {
		k, ok := kinds[o.Type]
		if !ok {
			continue
		}
		v := strings.TrimSpace(o.Value)
		if v == "" || utf8.RuneCountInString(v) > maxValueLength {
			continue
		}
		key := [2]string{o.Type, v}
		if _, dup := seen[key]; dup {
			continue
		}
		seen[key] = struct{}{}
		out = append(out, observable{Type: o.Type, Value: v, kind: k, safe: intel.SafeValue(v)})
	}
	return out
}

// supported is candidates less the values MISP would misread, which are never sent to it.
func supported(in []gen.ObservableInput) []observable { return safeOnly(candidates(in)) }

// safeOnly keeps the observables MISP reads exactly (filtering obs in place).
func safeOnly(obs []observable) []observable {
	n := 0
	for _, o := range obs {
		if o.safe {
			obs[n] = o
			n++
		}
	}
	return obs[:n]
}

// checked is the spelling of o's value MISP's warninglists are asked about: lower case for a
// caseless kind, as MISP keeps it.
func (o observable) checked() string {
	if o.kind.caseless {
		return strings.ToLower(o.Value)
	}
	return o.Value
}

// scannable reports whether urlscan.io can scan o.
func (o observable) scannable() bool { return o.Type == "url" || o.Type == "domain" }
