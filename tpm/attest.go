// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/der"
)

// Remote attestation, agent side: the endorsement key (EK), attestation
// keys (AK: restricted signing keys under the SRK), quotes and credential
// activation. Verification is not here: package quote checks what these
// functions produce, without a TPM.

// EK is the TPM's endorsement key as an attestation agent reports it.
type EK struct {
	// Public is the EK's TPMT_PUBLIC (marshalled), from a TCG EK template
	// (EK Credential Profile, low range): ECC P-256, or RSA 2048 when the
	// TPM has a certificate for that one only.
	Public []byte
	// Cert is the EK certificate (DER) from NV index 0x01c0000a (ECC) or
	// 0x01c00002 (RSA), or nil when the TPM has none.
	Cert []byte
	// Chain are the certificates of the EK certificate chain the maker
	// stored in NV indices 0x01c00100-0x01c001ff (EK Credential Profile
	// 2.3, "EK certificate chain"), in index order: intermediates for
	// building the chain, not trust anchors.
	Chain [][]byte
}

// maxNVCert bounds an EK certificate read from NV.
const maxNVCert = 4096

// The NV range of the EK certificate chain, and how many certificates
// of it are read at most.
const (
	ekChainFirst = 0x01c00100
	ekChainLast  = 0x01c001ff
	maxEKChain   = 8
)

// ekTemplate chooses the EK: the ECC P-256 one (fast to create) when the
// TPM has its certificate or has no certificate at all, the RSA 2048 one
// when only that has a certificate (swtpm_setup --create-ek-cert, many
// firmware TPMs). The same template always gives the same key for as
// long as the endorsement seed is unchanged; both have the same policy.
func (t *TPM) ekTemplate() (tpm2.TPMTPublic, uint32, error) {
	if ok, err := t.nvDefined(ekECCCertNV); err != nil || ok {
		return tpm2.ECCEKTemplate, ekECCCertNV, err
	}
	if ok, err := t.nvDefined(ekRSACertNV); err != nil || ok {
		return tpm2.RSAEKTemplate, ekRSACertNV, err
	}
	return tpm2.ECCEKTemplate, 0, nil
}

func (t *TPM) nvDefined(index uint32) (bool, error) {
	_, err := tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(index)}.Execute(t.tr)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return false, nil
	}
	return err == nil, err
}

// EndorsementKey returns the TPM's endorsement key (see ekTemplate),
// its certificate when one is provisioned, and the maker's chain from
// NV. The endorsement hierarchy's authorization must be empty.
func (t *TPM) EndorsementKey() (*EK, error) {
	const op = "read endorsement key"
	var ek *EK
	var certNV uint32
	err := t.withEK(op, func(h tpm2.NamedHandle, pub *tpm2.TPMTPublic, nv uint32) error {
		ek = &EK{Public: tpm2.Marshal(pub)}
		certNV = nv
		return nil
	})
	if err != nil {
		return nil, err
	}
	if certNV != 0 {
		cert, err := t.readNV(certNV, maxNVCert)
		if err != nil && !errors.Is(err, errNoNV) {
			return nil, wrap(op+": certificate", err)
		}
		ek.Cert = cert
	}
	if ek.Chain, err = t.ekChain(); err != nil {
		return nil, wrap(op+": certificate chain", err)
	}
	return ek, nil
}

// ekChain reads the certificates in the EK chain NV range; an index may
// hold several DER certificates back to back.
func (t *TPM) ekChain() ([][]byte, error) {
	hs, err := t.handles(ekChainFirst)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, h := range hs {
		if h < ekChainFirst || h > ekChainLast {
			break
		}
		b, err := t.readNV(h, maxNVCert*2)
		if err != nil {
			return nil, err
		}
		for len(b) > 0 && len(out) < maxEKChain {
			n, ok := der.SeqLen(b)
			if !ok || n > len(b) {
				break // padding or junk after the certificates
			}
			out = append(out, b[:n:n])
			b = b[n:]
		}
	}
	return out, nil
}

// withEK creates the EK primary (see ekTemplate), calls fn with it and
// the NV index of its certificate (0: none), and flushes it.
func (t *TPM) withEK(op string, fn func(tpm2.NamedHandle, *tpm2.TPMTPublic, uint32) error) error {
	tmpl, nv, err := t.ekTemplate()
	if err != nil {
		return wrap(op+": choose endorsement key", err)
	}
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHEndorsement,
		InPublic:      tpm2.New2B(tmpl),
	}.Execute(t.tr)
	if err != nil {
		return wrap(op+": create endorsement key", err)
	}
	defer tpm2.FlushContext{FlushHandle: rsp.ObjectHandle}.Execute(t.tr)
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return wrap(op, err)
	}
	return fn(tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}, pub, nv)
}

var errNoNV = errors.New("nv index not defined")

// readNV reads a whole NV index of at most max bytes.
func (t *TPM) readNV(index uint32, max int) ([]byte, error) {
	h := tpm2.TPMHandle(index)
	pr, err := tpm2.NVReadPublic{NVIndex: h}.Execute(t.tr)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCHandle) {
			return nil, errNoNV
		}
		return nil, err
	}
	pub, err := pr.NVPublic.Contents()
	if err != nil {
		return nil, err
	}
	size := int(pub.DataSize)
	if size > max {
		return nil, fmt.Errorf("nv index 0x%x holds %d bytes (more than %d)", index, size, max)
	}
	const chunk = 512 // below every TPM's MAX_NV_BUFFER_SIZE
	var out []byte
	for off := 0; off < size; off += chunk {
		n := min(chunk, size-off)
		rsp, err := tpm2.NVRead{
			AuthHandle: tpm2.AuthHandle{Handle: h, Name: pr.NVName, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    tpm2.NamedHandle{Handle: h, Name: pr.NVName},
			Size:       uint16(n),
			Offset:     uint16(off),
		}.Execute(t.tr)
		if err != nil {
			return nil, err
		}
		out = append(out, rsp.Data.Buffer...)
	}
	return out, nil
}

// AK is an attestation key: a restricted ECC P-256 signing key (ECDSA
// with SHA-256) created under the storage root key. It can sign only
// data the TPM itself produced (quotes, certifications), so a signature
// by it vouches that the TPM made the signed structure.
type AK struct {
	Public  []byte // TPMT_PUBLIC (marshalled)
	Private []byte // TPM2B_PRIVATE contents, wrapped by the SRK
	Name    []byte // the key's name (nameAlg || digest of Public)
}

// akTemplate is the AK: fixedTPM, fixedParent, sensitiveDataOrigin,
// restricted, sign, ECDSA-SHA256 on P-256.
var akTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		Restricted:          true,
		SignEncrypt:         true,
		NoDA:                true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Scheme: tpm2.TPMTECCScheme{
			Scheme: tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA,
				&tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		CurveID: tpm2.TPMECCNistP256,
	}),
}

// CreateAK creates a new attestation key under the storage root key.
func (t *TPM) CreateAK() (*AK, error) {
	const op = "create attestation key"
	var ak *AK
	err := t.withSRK(op, func(s *srk) error {
		rsp, err := tpm2.Create{
			ParentHandle: tpm2.AuthHandle{Handle: s.handle.Handle, Name: s.handle.Name, Auth: tpm2.PasswordAuth(nil)},
			InPublic:     tpm2.New2B(akTemplate),
		}.Execute(t.tr)
		if err != nil {
			return wrap(op, err)
		}
		pub, err := rsp.OutPublic.Contents()
		if err != nil {
			return wrap(op, err)
		}
		name, err := tpm2.ObjectName(pub)
		if err != nil {
			return wrap(op, err)
		}
		ak = &AK{Public: tpm2.Marshal(pub), Private: rsp.OutPrivate.Buffer, Name: name.Buffer}
		return nil
	})
	return ak, err
}

// withAK loads ak under the SRK, calls fn with its handle, and flushes it.
func (t *TPM) withAK(op string, ak *AK, fn func(tpm2.NamedHandle) error) error {
	if ak == nil || len(ak.Public) == 0 || len(ak.Private) == 0 {
		return &Error{Op: op, Kind: ErrMalformed, Err: errors.New("empty attestation key")}
	}
	return t.withSRK(op, func(s *srk) error {
		h, err := t.load(s, ak.Public, ak.Private)
		if err != nil {
			return loadError(op, err)
		}
		defer tpm2.FlushContext{FlushHandle: h.Handle}.Execute(t.tr)
		return fn(h)
	})
}

// Quote is a TPM2_Quote's output.
type Quote struct {
	Attest    []byte // TPMS_ATTEST (the quoted structure, marshalled)
	Signature []byte // TPMT_SIGNATURE (marshalled)
}

// QuoteSelection names the PCRs to quote, per bank.
type QuoteSelection map[digest.Algo][]int

func (sel QuoteSelection) tpm() (tpm2.TPMLPCRSelection, error) {
	var out tpm2.TPMLPCRSelection
	for _, b := range banks {
		a, _ := digest.AlgoFor(b.hash)
		pcrs, ok := sel[a]
		if !ok {
			continue
		}
		if err := checkPCRs(pcrs); err != nil {
			return out, err
		}
		out.PCRSelections = append(out.PCRSelections, tpm2.TPMSPCRSelection{Hash: b.alg, PCRSelect: pcrBitmap(pcrs)})
	}
	if len(out.PCRSelections) != len(sel) {
		return out, fmt.Errorf("%w: unsupported bank in selection", ErrBadPCRs)
	}
	if len(out.PCRSelections) == 0 {
		return out, fmt.Errorf("%w: no pcrs selected", ErrBadPCRs)
	}
	return out, nil
}

// maxNonce is the qualifying data a TPM accepts (sizeof TPMU_HA).
const maxNonce = 64

// Quote signs the selected PCRs and nonce with ak (TPM2_Quote).
func (t *TPM) Quote(ak *AK, nonce []byte, sel QuoteSelection) (*Quote, error) {
	const op = "quote"
	if len(nonce) > maxNonce {
		return nil, &Error{Op: op, Err: fmt.Errorf("nonce of %d bytes (at most %d)", len(nonce), maxNonce)}
	}
	s, err := sel.tpm()
	if err != nil {
		return nil, &Error{Op: op, Err: err}
	}
	var q *Quote
	err = t.withAK(op, ak, func(h tpm2.NamedHandle) error {
		rsp, err := tpm2.Quote{
			SignHandle:     tpm2.AuthHandle{Handle: h.Handle, Name: h.Name, Auth: tpm2.PasswordAuth(nil)},
			QualifyingData: tpm2.TPM2BData{Buffer: nonce},
			InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
			PCRSelect:      s,
		}.Execute(t.tr)
		if err != nil {
			return wrap(op, err)
		}
		q = &Quote{Attest: rsp.Quoted.Bytes(), Signature: tpm2.Marshal(rsp.Signature)}
		return nil
	})
	return q, err
}

// ReadQuotedPCRs reads the PCRs of sel, quotes them, and reads them again
// until both reads agree (a PCR may be extended between the read and the
// quote), so that the values returned are the ones quoted. It gives up
// after a few tries.
func (t *TPM) ReadQuotedPCRs(ak *AK, nonce []byte, sel QuoteSelection) (*Quote, digest.PCRs, error) {
	var lastErr error
	for try := 0; try < 5; try++ {
		before, err := t.readSel(sel)
		if err != nil {
			return nil, nil, err
		}
		q, err := t.Quote(ak, nonce, sel)
		if err != nil {
			return nil, nil, err
		}
		after, err := t.readSel(sel)
		if err != nil {
			return nil, nil, err
		}
		if sameValues(before, after) {
			return q, after, nil
		}
		lastErr = errors.New("pcrs kept changing while quoting")
	}
	return nil, nil, &Error{Op: "quote", Kind: ErrBusy, Err: lastErr}
}

func (t *TPM) readSel(sel QuoteSelection) (digest.PCRs, error) {
	out := digest.PCRs{}
	for a, pcrs := range sel {
		h, ok := a.CryptoHash()
		if !ok {
			return nil, &Error{Op: "read pcrs", Kind: ErrBadPCRs, Err: fmt.Errorf("unsupported bank %s", a)}
		}
		v, err := t.ReadPCRs(h, pcrs)
		if err != nil {
			return nil, err
		}
		out[a] = v
	}
	return out, nil
}

func sameValues(a, b digest.PCRs) bool {
	if len(a) != len(b) {
		return false
	}
	for h, av := range a {
		bv := b[h]
		if len(av) != len(bv) {
			return false
		}
		for i, v := range av {
			if !slices.Equal(v, bv[i]) {
				return false
			}
		}
	}
	return true
}

// ActivateCredential recovers the secret of a credential made (by
// TPM2_MakeCredential, or in software) for this TPM's EK and ak's name.
// It succeeds only if ak is loaded in the TPM that holds the EK: that is
// how a verifier learns that the AK lives in that TPM.
func (t *TPM) ActivateCredential(ak *AK, credentialBlob, encSecret []byte) ([]byte, error) {
	const op = "activate credential"
	var secret []byte
	err := t.withEK(op, func(ek tpm2.NamedHandle, _ *tpm2.TPMTPublic, _ uint32) error {
		return t.withAK(op, ak, func(h tpm2.NamedHandle) error {
			rsp, err := tpm2.ActivateCredential{
				ActivateHandle: tpm2.AuthHandle{Handle: h.Handle, Name: h.Name, Auth: tpm2.PasswordAuth(nil)},
				KeyHandle: tpm2.AuthHandle{Handle: ek.Handle, Name: ek.Name,
					Auth: tpm2.Policy(tpm2.TPMAlgSHA256, 16, ekPolicy)},
				CredentialBlob: tpm2.TPM2BIDObject{Buffer: credentialBlob},
				Secret:         tpm2.TPM2BEncryptedSecret{Buffer: encSecret},
			}.Execute(t.tr)
			if err != nil {
				return wrap(op, err)
			}
			secret = rsp.CertInfo.Buffer
			return nil
		})
	})
	return secret, err
}

// ekPolicy satisfies the EK template's policy: PolicySecret on the
// endorsement hierarchy (empty authorization).
func ekPolicy(tp transport.TPM, handle tpm2.TPMISHPolicy, nonceTPM tpm2.TPM2BNonce) error {
	_, err := tpm2.PolicySecret{
		AuthHandle:    tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
		PolicySession: handle,
		NonceTPM:      nonceTPM,
	}.Execute(tp)
	return err
}
