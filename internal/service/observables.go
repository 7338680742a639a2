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
	// fold is how the value is spelled when MISP's warninglists are asked about it
	// (observable.checked).
	fold fold
}

// fold says how a value is spelled for MISP's warninglists/checkValue, which compares the
// value as sent, while MISP's search ignores letter case: the relay asks about the spelling
// MISP keeps in its attributes, whose warninglist hits it used to take (with
// includeWarninglistHits) and no longer asks for.
type fold int

const (
	foldNone fold = iota // file names: kept as written
	// foldAll: MISP keeps such values in lower case (its AttributeValidationTool lower-cases
	// domains, hostnames, e-mail addresses and hashes, the hash half of "filename|md5" too),
	// and its hostname lists too.
	foldAll
	// foldHost: a URL's scheme and host, which its hostname lists compare, are lower case
	// in every list; the rest of the URL (path, query) is kept as written, as MISP keeps it.
	foldHost
)

var (
	ipTypes       = []string{"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip"}
	hostnameTypes = []string{"domain", "domain|ip", "hostname", "hostname|port"}
)

// kinds is the one table of supported observable types (lower-case CTIM names). Types not
// in it are ignored, as XDR expects from a module that does not know them.
var kinds = map[string]observableKind{
	"ip":        {human: "IP", mispTypes: ipTypes},
	"ipv6":      {human: "IPv6", mispTypes: ipTypes},
	"domain":    {human: "domain", mispTypes: hostnameTypes, fold: foldAll},
	"hostname":  {human: "hostname", mispTypes: hostnameTypes, fold: foldAll},
	"url":       {human: "URL", mispTypes: []string{"url", "uri", "link"}, fold: foldHost},
	"md5":       {human: "MD5", mispTypes: []string{"md5", "filename|md5", "malware-sample"}, hash: true, fold: foldAll},
	"sha1":      {human: "SHA1", mispTypes: []string{"sha1", "filename|sha1"}, hash: true, fold: foldAll},
	"sha256":    {human: "SHA256", mispTypes: []string{"sha256", "filename|sha256"}, hash: true, fold: foldAll},
	"sha512":    {human: "SHA512", mispTypes: []string{"sha512", "filename|sha512"}, hash: true, fold: foldAll},
	"email":     {human: "email", mispTypes: []string{"email", "email-src", "email-dst", "target-email", "whois-registrant-email"}, fold: foldAll},
	"file_name": {human: "file name", mispTypes: []string{"filename", "filename|md5", "filename|sha1", "filename|sha256", "filename|sha512", "malware-sample"}, fold: foldNone},
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

// checked is the spelling of o's value MISP's warninglists are asked about, and under which
// their answer is kept (mapper.checked): see fold. Observables of two kinds written alike
// may be asked about two spellings, and each gets the hits of its own.
func (o observable) checked() string {
	switch o.kind.fold {
	case foldAll:
		return lowerASCII(o.Value)
	case foldHost:
		start := 0
		if i := strings.Index(o.Value, "://"); i >= 0 {
			start = i + len("://")
		}
		end := len(o.Value)
		if i := strings.IndexAny(o.Value[start:], "/?#"); i >= 0 {
			end = start + i
		}
		if host, lower := o.Value[:end], lowerASCII(o.Value[:end]); lower != host {
			return lower + o.Value[end:] // a new string only when the host had capitals
		}
	}
	return o.Value
}

// lowerASCII is PHP's strtolower, which MISP uses: A to Z only (strings.ToLower would also
// fold the Kelvin sign into a k, which MISP does not).
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// scannable reports whether urlscan.io can scan o.
func (o observable) scannable() bool { return o.Type == "url" || o.Type == "domain" }
