package service

import (
	"net/netip"

	"github.com/misp-relay/misp-relay/internal/gen"
	"github.com/misp-relay/misp-relay/internal/intel"
)

// maxObservableValue is the longest observable value the spec allows.
const maxObservableValue = 4096

// maxRelations bounds a sighting's relations: an object of many attributes, or a value in
// many composite attributes of one event, must not make one sighting a graph.
const maxRelations = 10

// CTIM relations the relay writes (CTIM's open ObservableRelationType vocabulary), as XDR's
// other relays write them.
const (
	relResolvedTo = "Resolved_To"  // a domain or host name, and its address
	relFileNameOf = "File_Name_Of" // a file name, and a hash of the file
	relRelatedTo  = "Related_To"   // any other pair of one object's attributes
)

// relations are what MISP links to o in event e, for the sighting of o in e: for each
// matched attribute, the other half of a composite attribute (domain|ip, filename|<hash>,
// malware-sample) and the other attributes of its MISP object (when the backend knows them:
// a feed does, MISP's attributes search does not), those that have a CTIM observable type
// (a port has none), each relation once, at most maxRelations. nil when there are none.
func (m mapper) relations(o observable, e *intel.Event, originURI *string) *[]gen.ObservedRelation {
	var out []gen.ObservedRelation
	add := func(r gen.ObservedRelation) bool {
		for _, x := range out {
			if x.Relation == r.Relation && x.Source == r.Source && x.Related == r.Related {
				return true
			}
		}
		out = append(out, r)
		return len(out) < maxRelations
	}
	self := o.ctim()
	for i := range e.Attributes {
		a := &e.Attributes[i]
		if v1, v2, ok := intel.Halves(a.Type, a.Value); ok {
			t1, t2, _ := intel.HalfTypes(a.Type)
			x, okx := ctimObservable(t1, v1)
			y, oky := ctimObservable(t2, v2)
			// The observed half is the observable as asked (a hostname found in a domain|ip).
			if okx && intel.SameValue(v1, o.Value) {
				x = self
			} else if oky && intel.SameValue(v2, o.Value) {
				y = self
			}
			if okx && oky && !add(observedRelation(m.source, x, y, map[string]any{"misp_type": a.Type}, originURI)) {
				break
			}
		}
		for _, mb := range a.Object.Members {
			if mb.Relation == a.Object.Relation && mb.Value == a.Value && mb.Type == a.Type {
				continue // the matched attribute itself
			}
			other, ok := ctimObservable(mb.Type, mb.Value)
			if !ok || other == self {
				continue
			}
			info := map[string]any{"misp_object": a.Object.Name}
			if !add(observedRelation(m.source, self, other, info, originURI)) {
				return &out
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return &out
}

// observedRelation relates x and y in the direction CTIM's vocabulary reads: a host name
// Resolved_To its address, a file name File_Name_Of its hash, otherwise x Related_To y; origin
// is the source that said so.
func observedRelation(origin string, x, y gen.Observable, info map[string]any, originURI *string) gen.ObservedRelation {
	rel := relRelatedTo
	switch {
	case isHost(x.Type) && isAddress(y.Type):
		rel = relResolvedTo
	case isHost(y.Type) && isAddress(x.Type):
		rel, x, y = relResolvedTo, y, x
	case x.Type == "file_name" && isHash(y.Type):
		rel = relFileNameOf
	case y.Type == "file_name" && isHash(x.Type):
		rel, x, y = relFileNameOf, y, x
	}
	return gen.ObservedRelation{Origin: origin, OriginUri: originURI, Relation: rel, Source: x, Related: y, RelationInfo: &info}
}

func isHost(t gen.ObservableType) bool    { return t == "domain" || t == "hostname" }
func isAddress(t gen.ObservableType) bool { return t == "ip" || t == "ipv6" }
func isHash(t gen.ObservableType) bool {
	return t == "md5" || t == "sha1" || t == "sha256" || t == "sha512"
}

// ctimObservable is the CTIM observable of a MISP attribute type's value; ok is false for
// types CTIM has no observable for (a port, a registry value, an ssdeep) and blank values.
func ctimObservable(mispType, value string) (gen.Observable, bool) {
	if value == "" || len(value) > maxObservableValue {
		return gen.Observable{}, false
	}
	var t string
	switch mispType {
	case "ip-src", "ip-dst":
		a, err := netip.ParseAddr(value)
		switch {
		case err != nil:
			return gen.Observable{}, false
		case a.Is4() || a.Is4In6():
			t = "ip"
		default:
			t = "ipv6"
		}
	case "domain", "hostname", "md5", "sha1", "sha256", "sha512":
		t = mispType
	case "url", "uri":
		t = "url"
	case "filename":
		t = "file_name"
	case "email", "email-src", "email-dst":
		t = "email"
	default:
		return gen.Observable{}, false
	}
	return gen.Observable{Type: gen.ObservableType(t), Value: value}, true
}
