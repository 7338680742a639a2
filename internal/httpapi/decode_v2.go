//go:build go1.27 && goexperiment.jsonv2

package httpapi

import (
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
)

// decodeUnique decodes dec's next value into v, refusing objects that name a member twice
// with errDuplicateName (through json/v2's UnmarshalerFrom, which the v2-backed encoding/json
// of Go 1.27 calls with its own options, UseNumber included), as kin-openapi's request
// validation does with the same Go.
func decodeUnique(dec *json.Decoder, v *any) error {
	err := dec.Decode(&uniqueNames{v}) //nolint:staticcheck // SA9005 does not know json/v2's UnmarshalJSONFrom
	if duplicateName(err) {
		return errDuplicateName
	}
	return err
}

type uniqueNames struct{ out *any }

func (u *uniqueNames) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return jsonv2.UnmarshalDecode(dec, u.out, jsontext.AllowDuplicateNames(false))
}

// duplicateName tells whether err is json/v2's refusal of a repeated member name, which the
// v1 Decoder hands on as a *json.SyntaxError with the same text.
func duplicateName(err error) bool {
	var se *json.SyntaxError
	return errors.Is(err, jsontext.ErrDuplicateName) ||
		errors.As(err, &se) && se.Error() == jsontext.ErrDuplicateName.Error()
}
