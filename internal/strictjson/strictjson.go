// SPDX-License-Identifier: Apache-2.0

// Package strictjson decodes a document that must be exactly one JSON
// value of a known type: the policies (runtime and boot) and the
// agent/verifier protocol messages. It is encoding/json with no member
// the type does not have and no data after the value.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
)

// ErrTrailing is the error for data after the value.
var ErrTrailing = errors.New("trailing data")

// Decode decodes the JSON value in b into v: a member v's type does not
// have is an error (json.Decoder.DisallowUnknownFields), and so is
// another value after it (ErrTrailing; it is found as json.Decoder.More
// finds one, so white space and a closing '}' or ']' after the value are
// not).
func Decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return ErrTrailing
	}
	return nil
}
