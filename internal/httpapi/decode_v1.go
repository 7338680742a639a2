//go:build !go1.27 || !goexperiment.jsonv2

package httpapi

import "encoding/json"

// decodeUnique decodes dec's next value into v. Without json/v2 (Go before 1.27, or 1.27
// built with GOEXPERIMENT=nojsonv2) duplicate member names cannot be told apart, and the last
// one wins, as kin-openapi's request validation then also reads them.
func decodeUnique(dec *json.Decoder, v *any) error { return dec.Decode(v) }
