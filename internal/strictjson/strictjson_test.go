// SPDX-License-Identifier: Apache-2.0

package strictjson

import (
	"errors"
	"strings"
	"testing"
)

type doc struct {
	A int `json:"a"`
}

func TestDecode(t *testing.T) {
	for in, want := range map[string]error{
		`{"a":1}`:          nil,
		" {\"a\":1} \n\t":  nil,
		`{"a":1} {"a":2}`:  ErrTrailing,
		`{"a":1}x`:         ErrTrailing,
		`{"a":1} 3`:        ErrTrailing,
		`{"a":1}}`:         ErrTrailing,
		`{"a":1} ]`:        ErrTrailing,
		"{\"a\":1}\n}x":    ErrTrailing,
		`{"a":1}` + "\x00": ErrTrailing,
		`{"a":1,"b":2}`:    errors.New(`json: unknown field "b"`),
		`{"a":"1"}`:        errors.New("json: cannot unmarshal"),
		``:                 errors.New("EOF"),
		`{"a":1`:           errors.New("unexpected EOF"),
	} {
		var d doc
		err := Decode([]byte(in), &d)
		switch {
		case want == nil && err != nil:
			t.Errorf("%q: %v", in, err)
		case want == ErrTrailing && !errors.Is(err, ErrTrailing):
			t.Errorf("%q: %v, want ErrTrailing", in, err)
		case want != nil && err == nil:
			t.Errorf("%q: accepted, want %v", in, want)
		case want != nil && want != ErrTrailing && (errors.Is(err, ErrTrailing) || !strings.HasPrefix(err.Error(), want.Error())):
			t.Errorf("%q: %v, want %v", in, err, want)
		}
		if want == nil && d.A != 1 {
			t.Errorf("%q: decoded %+v", in, d)
		}
	}
}
