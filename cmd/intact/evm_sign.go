// SPDX-License-Identifier: Apache-2.0

package main

import (
	"crypto"
	"os"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/evm"
	"github.com/intactsec/intact/internal/xattr"
	"github.com/intactsec/intact/label"
	"github.com/intactsec/intact/sig"
)

// evmSignFlags are sign's EVM flags.
type evmSignFlags struct {
	mode string
	meta evmMetaFlags
}

func (s *evmSignFlags) register(f *flagSet) {
	f.StringVar(&s.mode, "evm", "none", "also write an EVM signature to security.evm: portable, full or none")
	s.meta.register(f)
}

// evmSigner writes security.evm signatures after sign made a label.
type evmSigner struct {
	typ       label.Type
	opts      evm.ReadOptions
	layout    evm.Layout
	signer    crypto.Signer
	keyID     uint32
	algo      digest.Algo
	xattrUser bool
}

// signer returns nil for --evm none.
func (s *evmSignFlags) signer(printOnly bool, xattrUser bool) (*evmSigner, error) {
	var typ label.Type
	switch s.mode {
	case "none":
		return nil, nil
	case "portable":
		typ = label.TypePortableDigsig
	case "full":
		typ = label.TypeDigsig
	default:
		return nil, usageErrorf("sign", "--evm %q: want portable, full or none", s.mode)
	}
	if printOnly {
		return nil, usageErrorf("sign", "--evm writes security.evm and cannot be combined with -n")
	}
	cfg, uuid, layout, err := s.meta.parse("sign")
	if err != nil {
		return nil, err
	}
	return &evmSigner{
		typ:       typ,
		opts:      evm.ReadOptions{Config: cfg, Portable: typ == label.TypePortableDigsig, UUID: uuid, XattrUser: xattrUser},
		layout:    layout,
		xattrUser: xattrUser,
	}, nil
}

// sign computes the EVM signature of file as it will be once its IMA label
// is ima, and writes it to security.evm.
func (s *evmSigner) sign(file *os.File, ima []byte) error {
	in, err := evm.ReadInput(file, s.opts)
	if err != nil {
		return err
	}
	in.Xattrs[evm.XattrIMA] = ima
	msg, err := s.opts.Config.Message(s.typ, in, s.layout)
	if err != nil {
		return err
	}
	sum, err := evm.Digest(s.algo, msg)
	if err != nil {
		return err
	}
	sg, err := sig.SignDigest(s.signer, s.keyID, s.algo, sum)
	if err != nil {
		return err
	}
	v := evm.Value{Type: s.typ, Sig: sg}
	return xattr.FSet(file, xattr.EVM(s.xattrUser), v.Marshal())
}
