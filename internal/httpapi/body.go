package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/misp-relay/misp-relay/internal/gen"
)

// One parse per body: admit reads it once (readBody), then parseBody decodes it once into
// plain JSON values and validates that value once against the spec's schema with
// kin-openapi (what the validator middleware would do, minus its own read and decode: it is
// told to leave bodies alone). The handlers of routes with a body (typedBodies) take the
// typed request from that value, instead of the generated strict handler decoding the bytes
// a third time.

// parseBody decodes st.body and validates it against op's schema, leaving the value in st;
// the error is the contract's answer to a body it refuses.
func (a *api) parseBody(op operation, st *requestState) error {
	v, ok := decodeBody(st.body)
	if !ok {
		return payloadError(schemaProblem())
	}
	if list, isList := v.([]any); isList {
		st.observables = len(list)
	}
	// The options of kin-openapi's request validation; error details would echo schemas and
	// rejected values (which may be secrets).
	if err := op.body.VisitJSON(v, openapi3.VisitAsRequest(), openapi3.DisableSchemaErrorDetails()); err != nil {
		return bodyError(op.path, st.body, err)
	}
	st.value = v
	return nil
}

// typedBodies serves the routes with a request body from the value parseBody validated,
// through the strict handlers (api); every other route goes to the generated strict handler.
type typedBodies struct {
	gen.ServerInterface
	api *api
}

// bodyValue is the request's validated body.
func bodyValue(r *http.Request) any { return stateFrom(r.Context()).value }

// respond writes what a strict handler answered: the response, or err as the envelope.
func (a *api) respond(w http.ResponseWriter, r *http.Request, err error, visit func() error) {
	if err == nil {
		err = visit()
	}
	if err != nil {
		a.failed(w, r, err)
	}
}

// answer writes v, a strict handler's 200 JSON answer, as its generated Visit method would
// (the same JSON, newline included) but whole, from a pooled buffer, with its
// Content-Length: the generated method streams it through a fresh encoder, whose buffer an
// answer of a few dozen kilobytes outgrows on every request, and chunks it.
func (a *api) answer(w http.ResponseWriter, v any) error {
	buf, _ := a.buffers.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledAnswer {
			a.buffers.Put(buf)
		}
	}()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(buf.Bytes())
	return err
}

// maxPooledAnswer bounds the buffers kept for answers: a rare huge answer (a thousand
// observables with a hundred events each) is not held after it is written.
const maxPooledAnswer = 1 << 20

func (t typedBodies) ObserveObservables(w http.ResponseWriter, r *http.Request) {
	list := observableList(bodyValue(r))
	res, err := t.api.ObserveObservables(r.Context(), gen.ObserveObservablesRequestObject{Body: &list})
	t.api.respond(w, r, err, func() error { return t.api.answer(w, res) })
}

func (t typedBodies) DeliberateObservables(w http.ResponseWriter, r *http.Request) {
	list := observableList(bodyValue(r))
	res, err := t.api.DeliberateObservables(r.Context(), gen.DeliberateObservablesRequestObject{Body: &list})
	t.api.respond(w, r, err, func() error { return t.api.answer(w, res) })
}

func (t typedBodies) ReferObservables(w http.ResponseWriter, r *http.Request) {
	list := observableList(bodyValue(r))
	res, err := t.api.ReferObservables(r.Context(), gen.ReferObservablesRequestObject{Body: &list})
	t.api.respond(w, r, err, func() error { return t.api.answer(w, res) })
}

func (t typedBodies) RespondObservables(w http.ResponseWriter, r *http.Request) {
	list := observableList(bodyValue(r))
	res, err := t.api.RespondObservables(r.Context(), gen.RespondObservablesRequestObject{Body: &list})
	t.api.respond(w, r, err, func() error { return t.api.answer(w, res) })
}

func (t typedBodies) RespondTrigger(w http.ResponseWriter, r *http.Request) {
	m := object(bodyValue(r))
	body := gen.TriggerRequest{ActionId: str(m["action-id"]), ObservableType: str(m["observable_type"]), ObservableValue: str(m["observable_value"])}
	res, err := t.api.RespondTrigger(r.Context(), gen.RespondTriggerRequestObject{Body: &body})
	t.api.respond(w, r, err, func() error { return res.VisitRespondTriggerResponse(w) })
}

func (t typedBodies) Tile(w http.ResponseWriter, r *http.Request) {
	body := gen.TileRequest{TileId: str(object(bodyValue(r))["tile_id"])}
	res, err := t.api.Tile(r.Context(), gen.TileRequestObject{Body: &body})
	t.api.respond(w, r, err, func() error { return res.VisitTileResponse(w) })
}

func (t typedBodies) TileData(w http.ResponseWriter, r *http.Request) {
	m := object(bodyValue(r))
	body := gen.TileDataRequest{Period: str(m["period"]), TileId: str(m["tile_id"])}
	res, err := t.api.TileData(r.Context(), gen.TileDataRequestObject{Body: &body})
	t.api.respond(w, r, err, func() error { return res.VisitTileDataResponse(w) })
}

// observableList is an ObservableList body as the spec has validated it (an array of objects
// with string type and value; anything else reads as empty, never a panic).
func observableList(v any) gen.ObservableList {
	items, _ := v.([]any)
	out := make(gen.ObservableList, len(items))
	for i, item := range items {
		m := object(item)
		out[i] = gen.ObservableInput{Type: str(m["type"]), Value: str(m["value"])}
	}
	return out
}

func object(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// decodeBody parses body as JSON (numbers kept as json.Number) and reports whether it is
// a single well-formed JSON value with no object naming a member twice: parsers disagree on
// which of two values wins, so such a body is ambiguous (kin-openapi refuses it too).
func decodeBody(body []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := decodeUnique(dec, &v); err != nil {
		return nil, false
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return nil, false // data after the value
	}
	return v, true
}
