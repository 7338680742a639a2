//go:build !go1.27 || !goexperiment.jsonv2

package mispjson

import "encoding/json"

// Unmarshal decodes the JSON value b into v as json.Unmarshal decodes it into a zero T. Built
// with go1.27 it is faster (see unmarshal.go); before go1.27, encoding/json/v2 is not there.
func Unmarshal[T any](b []byte, v *T) error {
	*v = *new(T)
	return json.Unmarshal(b, v)
}
