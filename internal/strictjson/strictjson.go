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
// anything but white space after the value (ErrTrailing).
func Decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// Not dec.More: it is false before a '}' or ']', so a value followed
	// by "}" (or "} anything") would pass.
	if len(bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n")) > 0 {
		return ErrTrailing
	}
	return nil
}
