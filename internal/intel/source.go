package intel

// Source is one place a tenant's lookups go: a MISP with the tenant's key for it, or a feed.
// A request consults every source of its tenant, each answer naming the source it came from.
type Source struct {
	// Name is what judgements, sightings, reasons and errors say the answer came from; it
	// begins with "MISP": "MISP misp.example.org", "MISP feed circl". It never holds a key.
	Name string
	// Backend answers for the source.
	Backend Backend
	// Key is the tenant's credential for Backend; "" for a feed.
	Key string
	// UI is the base of links into the source for people; "" for none (a feed).
	UI string
}
