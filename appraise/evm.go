// SPDX-License-Identifier: Apache-2.0

package appraise

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/internal/xattr"
	"github.com/intactsec/intact/label"
	"github.com/intactsec/intact/sig"
)

// EVMOptions turn on the check of security.evm (Options.EVM). A file whose
// IMA label verifies is then also checked for its EVM value, when it has
// one: an HMAC against HMACKey, a full or portable signature against the
// trusted certificates. A mismatch is MetadataChanged.
type EVMOptions struct {
	// HMACKey is the EVM key for HMACs (type 0x02). Without it HMACs are
	// not checked, unless Require is set, which makes them UnknownKey.
	HMACKey []byte
	// Config says which protected xattrs the kernel has enabled.
	Config evm.Config
	// UUID overrides the file-system UUID (default: read from the file
	// system).
	UUID evm.UUIDSource
	// Layout of h_misc; the zero value is this machine's layout.
	Layout evm.Layout
	// Require fails files without security.evm (NoLabel, "missing-HMAC"
	// as the kernel says once EVM is initialized) and HMACs that cannot be
	// checked because no key was given (UnknownKey). Callers set it when
	// an EVM key or EVM certificates are configured: stripping
	// security.evm must not skip the metadata check.
	Require bool
	// Keys, if set, are the certificates trusted for security.evm
	// signatures (the kernel's .evm keyring); nil: Options.Keys.
	Keys *sig.Keyring
}

// checkEVM adds the EVM check to r, the passing IMA result of f.
func (a *Appraiser) checkEVM(f *os.File, r Result) Result {
	o := a.opts.EVM
	raw, err := xattr.FGet(f, xattr.EVM(a.opts.XattrUser))
	if errors.Is(err, unix.ENOTSUP) {
		err = xattr.ErrNotFound
	}
	switch {
	case errors.Is(err, xattr.ErrNotFound):
		if o.Require {
			r.Verdict, r.Reason = NoLabel, "missing-HMAC: no security.evm label, and EVM is required (an EVM key or EVM certificates are configured)"
		}
		return r
	case err != nil:
		r.Verdict, r.Reason = Unreadable, "reading security.evm: "+errReason(err)
		return r
	}
	v, err := evm.Parse(raw)
	if err != nil {
		r.Verdict, r.Reason = BadLabel, "security.evm: "+err.Error()
		if errors.Is(err, label.ErrUnsupported) {
			r.Verdict = Unsupported
		}
		return r
	}
	if v.Type == label.TypeHMAC && o.HMACKey == nil {
		if o.Require {
			r.Verdict, r.Reason = UnknownKey, "security.evm is an hmac and no evm key was given"
		}
		return r
	}
	r.EVM = v.Type.String()
	in, err := evm.ReadInput(f, evm.ReadOptions{
		Config: o.Config, Portable: v.Portable(), UUID: o.UUID, XattrUser: a.opts.XattrUser,
	})
	if err != nil {
		r.Verdict, r.Reason = Unreadable, "reading evm metadata: "+errReason(err)
		return r
	}
	keys := o.Keys
	if keys == nil {
		keys = a.opts.Keys
	}
	r.Verdict, r.Reason = CheckEVM(v, in, o, keys)
	return r
}

// CheckEVM decides whether the security.evm value v matches in, the
// metadata read from the file: OK, MetadataChanged, BadSignature,
// UnknownKey or Unsupported, with a reason for every verdict but OK.
func CheckEVM(v *evm.Value, in evm.Input, o *EVMOptions, keys *sig.Keyring) (Verdict, string) {
	layout := o.Layout
	if layout.Bits == 0 {
		layout = evm.NativeLayout()
	}
	msg, err := o.Config.Message(v.Type, in, layout)
	switch {
	case errors.Is(err, evm.ErrNoIMA):
		return MetadataChanged, "portable evm signature on a file without security.ima"
	case err != nil:
		return Unsupported, err.Error()
	}
	if v.Type == label.TypeHMAC {
		ok, err := v.CheckHMAC(o.HMACKey, msg)
		switch {
		case err != nil:
			return Unsupported, err.Error()
		case !ok:
			return MetadataChanged, "security.evm hmac does not match the file's owner, mode, protected xattrs, inode or file system"
		}
		return OK, ""
	}
	return checkEVMSignature(v, msg, keys)
}

func checkEVMSignature(v *evm.Value, msg []byte, keys *sig.Keyring) (Verdict, string) {
	keyID := fmt.Sprintf("%08x", v.Sig.KeyID)
	certs := keys.Lookup(v.Sig.KeyID)
	if len(certs) == 0 {
		return UnknownKey, "no trusted certificate with keyid " + keyID + " (security.evm)"
	}
	sum, err := evm.Digest(v.Sig.Algo, msg)
	if err != nil {
		return Unsupported, err.Error()
	}
	verdict, reason := BadSignature, "security.evm signature does not verify with the certificate for keyid "+keyID
	for _, c := range certs {
		err := sig.VerifyDigest(c.PublicKey, v.Sig.Algo, sum, v.Sig.Sig)
		switch {
		case err == nil:
			return OK, ""
		case errors.Is(err, sig.ErrDigestMismatch):
			verdict, reason = MetadataChanged, "security.evm "+v.Type.String()+" is valid but over another owner, mode or protected xattrs"
			if !v.Portable() {
				reason += ", inode or file system"
			}
		case errors.Is(err, sig.ErrUnsupportedKey):
			if verdict != MetadataChanged {
				verdict, reason = Unsupported, err.Error()
			}
		}
	}
	return verdict, reason
}
