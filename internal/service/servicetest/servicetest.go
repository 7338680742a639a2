// Package servicetest compares the relay's answers for real MISP events across backends, for
// tests outside package service: the real published events of service/testdata/realevents
// (a MISP feed directory), the observables their attributes hold, and the answer the relay
// gives each of them through any intel.Backend (the feed, or a MISP those events were loaded
// into). It is imported by tests only, as misptest is.
package servicetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/misp-relay/misp-relay/internal/auth"
	"github.com/misp-relay/misp-relay/internal/httpapi"
	"github.com/misp-relay/misp-relay/internal/intel"
	"github.com/misp-relay/misp-relay/internal/service"
	"github.com/misp-relay/misp-relay/internal/verdict"
)

// RealEventsDir is the absolute path of the real published MISP events the tests replay
// (service/testdata/realevents: manifest.json and one <event uuid>.json each, in MISP's feed
// format; its README gives each file's source and licence). Load it with feed.Load, or push
// its event files into a MISP (POST /events/add takes them as they are).
func RealEventsDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("servicetest: cannot locate the package's source")
	}
	return filepath.Join(filepath.Dir(filepath.Dir(file)), "testdata", "realevents")
}

// Roles of an observable in its attribute (the verdict policy's, see verdict.Judged).
const (
	RoleIndicator    = "indicator"      // judged
	RoleContext      = "context"        // a link, comment, text, other, attachment, or a filename not for IDS
	RoleFileNameHalf = "file-name half" // the name of a filename|<hash> or malware-sample
)

// Observable is one observable an attribute of a real event holds: the attribute itself, or
// one half of a composite attribute, with a CTIM type the relay looks up.
type Observable struct {
	Type, Value   string // CTIM: "ip", "md5", "file_name", ...
	EventUUID     string
	AttributeUUID string
	AttributeType string // MISP's: "ip-dst", "filename|md5", "malware-sample", "link", ...
	ToIDS         bool
	Comment       string // the attribute's comment, as the file has it
	Role          string // RoleIndicator, RoleContext or RoleFileNameHalf
}

// Observables reads the events of the feed directory dir (manifest.json and its event files)
// and returns every observable their attributes hold, objects' attributes included, in file
// order; values the relay never sends to MISP (intel.SafeValue) are left out.
func Observables(dir string) ([]Observable, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = root.Close() }()
	man, err := root.ReadFile("manifest.json")
	if err != nil {
		return nil, err
	}
	var manifest map[string]json.RawMessage
	if err := json.Unmarshal(man, &manifest); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	uuids := make([]string, 0, len(manifest))
	for u := range manifest {
		uuids = append(uuids, u)
	}
	slices.Sort(uuids)
	var out []Observable
	for _, u := range uuids {
		raw, err := root.ReadFile(u + ".json")
		if err != nil {
			return nil, err
		}
		var f struct {
			Event struct {
				UUID      string      `json:"uuid"`
				Attribute []attribute `json:"Attribute"`
				Object    []struct {
					Attribute []attribute `json:"Attribute"`
				} `json:"Object"`
			} `json:"Event"`
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", u, err)
		}
		attrs := f.Event.Attribute
		for _, o := range f.Event.Object {
			attrs = append(attrs, o.Attribute...)
		}
		for _, a := range attrs {
			out = append(out, a.observables(f.Event.UUID)...)
		}
	}
	return out, nil
}

type attribute struct {
	UUID    string `json:"uuid"`
	Type    string `json:"type"`
	Value   string `json:"value"`
	Comment string `json:"comment"`
	ToIDS   bool   `json:"to_ids"`
	Deleted bool   `json:"deleted"`
}

func (a attribute) observables(event string) []Observable {
	if a.Deleted {
		return nil
	}
	var out []Observable
	add := func(mispType, value, role string) {
		value = strings.TrimSpace(value)
		if t := ctimType(mispType, value); t != "" && intel.SafeValue(value) {
			out = append(out, Observable{
				Type: t, Value: value, EventUUID: event, AttributeUUID: a.UUID, AttributeType: a.Type,
				ToIDS: a.ToIDS, Comment: a.Comment, Role: role,
			})
		}
	}
	if v1, v2, ok := intel.Halves(a.Type, a.Value); ok {
		t1, t2, _ := intel.HalfTypes(a.Type)
		role1 := RoleIndicator
		if t1 == "filename" {
			role1 = RoleFileNameHalf
		}
		add(t1, v1, role1)
		add(t2, v2, RoleIndicator)
		return out
	}
	role := RoleIndicator
	if !verdict.Judged(&intel.Attribute{Type: a.Type, Value: a.Value, ToIDS: a.ToIDS}, a.Value) {
		role = RoleContext
	}
	add(a.Type, a.Value, role)
	return out
}

// ctimType is the CTIM type the relay looks a MISP attribute type's value up as; "" for types
// it does not look up.
func ctimType(mispType, value string) string {
	switch mispType {
	case "ip-src", "ip-dst":
		if a, err := netip.ParseAddr(value); err == nil && a.Is6() && !a.Is4In6() {
			return "ipv6"
		}
		return "ip"
	case "domain", "hostname", "md5", "sha1", "sha256", "sha512":
		return mispType
	case "url", "uri", "link":
		return "url"
	case "filename":
		return "file_name"
	case "email", "email-src", "email-dst", "target-email", "whois-registrant-email":
		return "email"
	}
	return ""
}

// Key is an observable as the relay answers it: CTIM type and value.
type Key struct{ Type, Value string }

// Keys returns the distinct observables of obs, in the order they first appear.
func Keys(obs []Observable) []Key {
	var keys []Key
	seen := map[Key]bool{}
	for _, o := range obs {
		if k := (Key{Type: o.Type, Value: o.Value}); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// Judgement is what the relay judged of an observable in one event (or, Event "", by the
// warninglists alone).
type Judgement struct {
	Disposition, Severity, Confidence, Reason, Source string
}

// Answer is the relay's answer for one observable.
type Answer struct {
	Verdict    string               // observe's verdict disposition name; "" for none
	Deliberate string               // deliberate's; "" for none
	Judgements map[string]Judgement // by event UUID ("" for one made by warninglists alone)
	Sightings  map[string]string    // "found in MISP event" sightings' descriptions, by event UUID
}

// Config is what Answers builds the relay's service from. Backend is required.
type Config struct {
	Backend      intel.Backend
	Key          string // the MISP API key the backend takes; any non-empty value for a feed
	Warninglists service.Warninglists
	Policy       verdict.Policy
	// Check, when set, is given every answer (path, status, headers, body), for a contract
	// check against api/openapi.yaml (testkit.Contract.Check).
	Check func(path string, status int, header http.Header, body []byte)
}

// Answers asks the relay, as XDR would (observe and deliberate through the HTTP handler),
// about each of keys through cfg.Backend, and returns the answer for each key that has one.
func Answers(ctx context.Context, cfg Config, keys []Key) (map[Key]Answer, error) {
	const secret = "servicetest-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	if cfg.Backend == nil {
		return nil, errors.New("servicetest: no backend")
	}
	key := cmpOr(cfg.Key, "servicetest")
	svc, err := service.New(service.Config{
		Version: "1.0.0", Backend: cfg.Backend, UIURL: "https://misp.example",
		Warninglists: cfg.Warninglists, Policy: cfg.Policy,
		Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		return nil, err
	}
	handler, err := httpapi.NewHandler(svc, httpapi.Config{Secret: secret})
	if err != nil {
		return nil, err
	}
	tok, err := auth.Sign(secret, auth.Claims{Key: key})
	if err != nil {
		return nil, err
	}
	out := map[Key]Answer{}
	for start := 0; start < len(keys); start += 500 {
		batch := keys[start:min(start+500, len(keys))]
		body, err := json.Marshal(batch2input(batch))
		if err != nil {
			return nil, err
		}
		for _, path := range []string{"/observe/observables", "/deliberate/observables"} {
			var ans enrichAnswer
			if err := post(ctx, handler, tok, path, body, cfg.Check, &ans); err != nil {
				return nil, err
			}
			ans.merge(out, path == "/deliberate/observables")
		}
	}
	return out, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func batch2input(keys []Key) []map[string]string {
	in := make([]map[string]string, len(keys))
	for i, k := range keys {
		in[i] = map[string]string{"type": k.Type, "value": k.Value}
	}
	return in
}

func post(ctx context.Context, h http.Handler, tok, path string, body []byte, check func(string, int, http.Header, []byte), v any) error {
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if check != nil {
		check(path, rec.Code, rec.Header(), rec.Body.Bytes())
	}
	if rec.Code != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", path, rec.Code, rec.Body.Bytes())
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if ans, ok := v.(*enrichAnswer); ok && len(ans.Errors) > 0 {
		return fmt.Errorf("%s: %s: %s", path, ans.Errors[0].Code, ans.Errors[0].Message)
	}
	return nil
}

type observable struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type enrichAnswer struct {
	Errors []struct {
		Code, Message string
	} `json:"errors"`
	Data struct {
		Verdicts struct {
			Docs []struct {
				DispositionName string     `json:"disposition_name"`
				Observable      observable `json:"observable"`
			} `json:"docs"`
		} `json:"verdicts"`
		Judgements struct {
			Docs []struct {
				Observable      observable `json:"observable"`
				DispositionName string     `json:"disposition_name"`
				Severity        string     `json:"severity"`
				Confidence      string     `json:"confidence"`
				Reason          string     `json:"reason"`
				Source          string     `json:"source"`
				ExternalIDs     []string   `json:"external_ids"`
			} `json:"docs"`
		} `json:"judgements"`
		Sightings struct {
			Docs []struct {
				Observables []observable `json:"observables"`
				Title       string       `json:"title"`
				Description string       `json:"description"`
				ExternalIDs []string     `json:"external_ids"`
			} `json:"docs"`
		} `json:"sightings"`
	} `json:"data"`
}

func (a *enrichAnswer) merge(out map[Key]Answer, deliberate bool) {
	get := func(o observable) Answer {
		ans := out[Key(o)]
		if ans.Judgements == nil {
			ans.Judgements, ans.Sightings = map[string]Judgement{}, map[string]string{}
		}
		return ans
	}
	for _, v := range a.Data.Verdicts.Docs {
		ans := get(v.Observable)
		if deliberate {
			ans.Deliberate = v.DispositionName
		} else {
			ans.Verdict = v.DispositionName
		}
		out[Key(v.Observable)] = ans
	}
	for _, j := range a.Data.Judgements.Docs {
		ans := get(j.Observable)
		event := ""
		if len(j.ExternalIDs) > 0 {
			event = j.ExternalIDs[0]
		}
		ans.Judgements[event] = Judgement{j.DispositionName, j.Severity, j.Confidence, j.Reason, j.Source}
		out[Key(j.Observable)] = ans
	}
	for _, s := range a.Data.Sightings.Docs {
		if len(s.Observables) == 0 || len(s.ExternalIDs) == 0 || !strings.HasPrefix(s.Title, "Found in MISP event") {
			continue
		}
		ans := get(s.Observables[0])
		ans.Sightings[s.ExternalIDs[0]] = s.Description
		out[Key(s.Observables[0])] = ans
	}
}
