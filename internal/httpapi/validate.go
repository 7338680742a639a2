package httpapi

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/misp-relay/misp-relay/internal/service"
)

// The relay contract words body errors the way marshmallow (the Python relays' validator)
// does, e.g. `Invalid JSON payload received. {0: {'value': ['Field may not be blank.']}}`.
// kin-openapi decides whether a body is valid against api/openapi.yaml; this file only
// explains a rejected body in that dialect, so XDR and its users see the messages they know.

const (
	invalidPayloadPrefix = "Invalid JSON payload received. "
	msgInvalidInput      = "Invalid input type."
	msgMissing           = "Missing data for required field."
	msgNull              = "Field may not be null."
	msgNotString         = "Not a valid string."
	msgBlank             = "Field may not be blank."
	msgUnknown           = "Unknown field."
	msgTooLong           = "Longer than maximum length %d." // marshmallow's validate.Length
	fieldSchema          = "_schema"
)

// maxLength is the spec's maxLength of each string field of the request bodies (a test checks
// it against api/openapi.yaml). Like the spec, it counts characters, not bytes. An observable's
// value has none: a longer value than the relay looks up is skipped (the core's
// maxValueLength).
var maxLength = map[string]int{
	"type": 128, "action-id": 128, "observable_type": 128, "observable_value": 4096,
}

// fieldErrors are the problems of one object: field name → messages. Declared fields come
// first in declaration order, then unknown fields in sorted order (marshmallow's order for
// those is random; ours is stable).
type fieldErrors struct {
	names []string
	msgs  map[string][]string
	// omitted counts the unknown fields left out of names (past maxListed).
	omitted int
}

func (f *fieldErrors) add(name, msg string) {
	if f.msgs == nil {
		f.msgs = map[string][]string{}
	}
	if _, ok := f.msgs[name]; !ok {
		f.names = append(f.names, name)
	}
	f.msgs[name] = append(f.msgs[name], msg)
}

func (f *fieldErrors) empty() bool { return len(f.names) == 0 }

func (f *fieldErrors) repr(b *strings.Builder) {
	b.WriteByte('{')
	for i, name := range f.names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(service.PyRepr(name))
		b.WriteString(": [")
		for j, m := range f.msgs[name] {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(service.PyRepr(m))
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
}

// maxListed bounds what one error message lists: the first items with problems, and the
// first unknown fields of an item. The rest is counted ("and 995 more items with problems"):
// marshmallow listed every one, so a 1 MB body of [{},{},...] made a 36 MB message.
const maxListed = 5

// observableListProblems returns the marshmallow dict for an observable-list body, or ""
// when the body is valid.
func observableListProblems(body []byte) string {
	v, ok := decodeBody(body)
	list, isList := v.([]any)
	if !ok || !isList {
		return schemaProblem()
	}
	var b strings.Builder
	n, moreFields := 0, 0
	for i, item := range list {
		fe := checkObject(item, []string{"type", "value"}, false)
		if fe.empty() {
			continue
		}
		n++
		if n > maxListed {
			continue
		}
		if n == 1 {
			b.WriteByte('{')
		} else {
			b.WriteString(", ")
		}
		moreFields += fe.omitted
		b.WriteString(strconv.Itoa(i))
		b.WriteString(": ")
		fe.repr(&b)
	}
	if n == 0 {
		return ""
	}
	b.WriteByte('}')
	var more []string
	if n > maxListed {
		more = append(more, fmt.Sprintf("%d more items with problems", n-maxListed))
	}
	if moreFields > 0 {
		more = append(more, fmt.Sprintf("%d more unknown fields", moreFields))
	}
	if len(more) > 0 {
		b.WriteString(" and " + strings.Join(more, " and ") + ".")
	}
	return b.String()
}

// triggerProblems returns the marshmallow dict for a /respond/trigger body, or "" when valid.
func triggerProblems(body []byte) string {
	v, ok := decodeBody(body)
	if !ok {
		return schemaProblem()
	}
	fe := checkObject(v, []string{"action-id", "observable_type", "observable_value"}, true)
	if fe.empty() {
		return ""
	}
	var b strings.Builder
	fe.repr(&b)
	return b.String()
}

func schemaProblem() string {
	var fe fieldErrors
	fe.add(fieldSchema, msgInvalidInput)
	var b strings.Builder
	fe.repr(&b)
	return b.String()
}

// checkObject validates v as an object of required non-blank string fields.
func checkObject(v any, fields []string, allowUnknown bool) fieldErrors {
	var fe fieldErrors
	obj, ok := v.(map[string]any)
	if !ok {
		fe.add(fieldSchema, msgInvalidInput)
		return fe
	}
	for _, f := range fields {
		raw, present := obj[f]
		switch s, isString := raw.(string); {
		case !present:
			fe.add(f, msgMissing)
		case raw == nil:
			fe.add(f, msgNull)
		case !isString:
			fe.add(f, msgNotString)
		case s == "":
			fe.add(f, msgBlank)
		case maxLength[f] > 0 && utf8.RuneCountInString(s) > maxLength[f]:
			fe.add(f, fmt.Sprintf(msgTooLong, maxLength[f]))
		}
	}
	if allowUnknown {
		return fe
	}
	var unknown []string
	for k := range obj {
		if !slices.Contains(fields, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	if len(unknown) > maxListed {
		fe.omitted = len(unknown) - maxListed
		unknown = unknown[:maxListed]
	}
	for _, k := range unknown {
		fe.add(k, msgUnknown)
	}
	return fe
}

// tileFieldMax is the spec's maxLength of tile_id and period (a test checks it).
const tileFieldMax = 128

// tileProblems returns the marshmallow dict for a /tiles/tile or /tiles/tile-data body, or
// "" when the contract's rules accept it: the fields in declaration order (period, then
// tile_id), then unknown ones, as the MISP-1.0.0 relay's schemas answered.
func tileProblems(path string, body []byte) string {
	v, ok := decodeBody(body)
	if !ok {
		return schemaProblem()
	}
	fields := []string{"tile_id"}
	if path == "/tiles/tile-data" {
		fields = []string{"period", "tile_id"}
	}
	fe := checkObject(v, fields, false)
	if obj, ok := v.(map[string]any); ok {
		for _, f := range fields {
			if s, ok := obj[f].(string); ok && utf8.RuneCountInString(s) > tileFieldMax {
				fe.add(f, fmt.Sprintf(msgTooLong, tileFieldMax))
			}
		}
	}
	if fe.empty() {
		return ""
	}
	var b strings.Builder
	fe.repr(&b)
	return b.String()
}
