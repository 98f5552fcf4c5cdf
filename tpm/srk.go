// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"github.com/google/go-tpm/tpm2"
)

// The storage root key (SRK) is the parent of every sealed key and
// signing key this package makes. It is not persisted: each operation
// creates it again with TPM2_CreatePrimary from the standard ECC P-256
// SRK template (TCG EK Credential Profile / Provisioning Guidance), which
// yields the same key for as long as the owner hierarchy's seed is
// unchanged (until TPM2_Clear). This needs no persistent handle (no
// owner-auth'd EvictControl, no clash with handles other software owns)
// and works alike on a device, swtpm and the simulator; ECC keeps
// CreatePrimary fast (tens of milliseconds; RSA would take seconds).
// The owner hierarchy's authorization must be empty.
var srkTemplate = tpm2.ECCSRKTemplate

// srk is a loaded storage root key.
type srk struct {
	handle tpm2.NamedHandle
	public tpm2.TPMTPublic
}

// withSRK creates the SRK, calls fn with it and flushes it.
func (t *TPM) withSRK(op string, fn func(*srk) error) error {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(srkTemplate),
	}.Execute(t.tr)
	if err != nil {
		return wrap(op+": create storage root key", err)
	}
	defer tpm2.FlushContext{FlushHandle: rsp.ObjectHandle}.Execute(t.tr)
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return wrap(op+": storage root key", err)
	}
	return fn(&srk{handle: tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}, public: *pub})
}

// auth is the SRK's authorization for a command: an HMAC session salted
// with the SRK, encrypting the first parameter in the direction dir, so
// that secrets do not cross the bus in the clear.
func (s *srk) auth(dir tpm2.AuthOption) tpm2.AuthHandle {
	return tpm2.AuthHandle{
		Handle: s.handle.Handle,
		Name:   s.handle.Name,
		Auth:   tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Salted(s.handle.Handle, s.public), dir),
	}
}

// load loads a child of the SRK and returns its handle; the caller
// flushes it.
func (t *TPM) load(s *srk, public, private []byte) (tpm2.NamedHandle, error) {
	rsp, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: s.handle.Handle, Name: s.handle.Name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    tpm2.TPM2BPrivate{Buffer: private},
		InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](public),
	}.Execute(t.tr)
	if err != nil {
		return tpm2.NamedHandle{}, err
	}
	return tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}, nil
}
