// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"errors"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/webhook"
)

func FuzzVerify(f *testing.F) {
	body := []byte(`{"id":"e1"}`)
	f.Add("e1", webhook.Sign(secret, "e1", 1700000000, body), "1700000000", body)
	f.Add("", "sha256=", "", []byte{})
	f.Add("e.1", "sha256=zz", "-1", []byte("x"))
	f.Fuzz(func(t *testing.T, id, sig, ts string, body []byte) {
		err := webhook.Verify(secret, id, sig, ts, body, time.Unix(1700000000, 0), time.Hour)
		if err == nil {
			return
		}
		if !errors.Is(err, webhook.ErrMalformed) && !errors.Is(err, webhook.ErrSignature) && !errors.Is(err, webhook.ErrStale) {
			t.Fatalf("untyped error %v", err)
		}
	})
}
