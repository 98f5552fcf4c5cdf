// SPDX-License-Identifier: Apache-2.0

// Package sim simulates a fleet of attestation agents for load tests of
// intact-verifier: each agent is intact's real agent handler
// (attest/agent) over a software TPM (SoftTPM) and an in-memory
// measurement list (MemLog) that grows while it is attested, served on
// its own loopback TLS listener with its own certificate. A verifier
// enrolls and attests a simulated agent exactly as it does a real one:
// the same HTTPS requests, the pinned certificate, credential activation
// against the EK, quotes by a restricted ECDSA P-256 AK.
//
// The software TPM is for load tests only: its keys are in process
// memory, so nothing it signs proves anything about a machine.
package sim

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/tpm"
)

// Errors of the software TPM.
var (
	// ErrActivation: the credential was not made for this TPM's EK and AK
	// (its integrity HMAC does not verify), as TPM2_ActivateCredential
	// fails with TPM_RC_INTEGRITY.
	ErrActivation = errors.New("sim: credential does not activate with this ek and ak")
	// ErrSelection: a quote asked for a bank or PCR the software TPM does
	// not have (it has the SHA-256 bank only).
	ErrSelection = errors.New("sim: unsupported pcr selection")
	// ErrWrongAK: an operation named an AK this TPM does not hold.
	ErrWrongAK = errors.New("sim: attestation key not in this tpm")
)

// NumPCRs is the number of PCRs of the SHA-256 bank.
const NumPCRs = 24

// SoftTPM is a software TPM for one simulated agent: an ECC P-256 EK
// (the TCG template, its private key in memory), an ECDSA P-256 AK with
// the attributes of a TPM-resident restricted signing key, a SHA-256 PCR
// bank, and a clock with reset and restart counts. It implements
// attest/agent.TPM.
type SoftTPM struct {
	ek      *ecdh.PrivateKey
	ekPub   []byte // TPMT_PUBLIC
	ekX     []byte
	ak      *ecdsa.PrivateKey
	akPub   []byte // TPMT_PUBLIC
	akName  []byte
	qname   []byte // qualified name of the AK
	born    time.Time
	clock0  uint64 // ms the TPM had run before born
	resets  uint32 // obfuscated reset count (constant: no reboots)
	restart uint32

	mu   sync.Mutex
	pcrs [NumPCRs][sha256.Size]byte
}

// NewSoftTPM makes a software TPM with fresh keys from rnd. The boot
// PCRs 0-9 get arbitrary values (a firmware would have extended them).
func NewSoftTPM(rnd io.Reader) (*SoftTPM, error) {
	t := &SoftTPM{born: time.Now()}
	var err error
	if t.ek, err = ecdh.P256().GenerateKey(rnd); err != nil {
		return nil, err
	}
	raw := t.ek.PublicKey().Bytes() // 0x04 || X || Y
	t.ekX = raw[1:33]
	ekTmpl := tpm2.ECCEKTemplate
	ekTmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: bytes.Clone(raw[1:33])},
		Y: tpm2.TPM2BECCParameter{Buffer: bytes.Clone(raw[33:65])},
	})
	t.ekPub = tpm2.Marshal(ekTmpl)

	if t.ak, err = ecdsa.GenerateKey(elliptic.P256(), rnd); err != nil {
		return nil, err
	}
	akRaw, err := t.ak.PublicKey.ECDH()
	if err != nil {
		return nil, err
	}
	ab := akRaw.Bytes()
	akTmpl := AKTemplate()
	akTmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: bytes.Clone(ab[1:33])},
		Y: tpm2.TPM2BECCParameter{Buffer: bytes.Clone(ab[33:65])},
	})
	t.akPub = tpm2.Marshal(akTmpl)
	name, err := tpm2.ObjectName(&akTmpl)
	if err != nil {
		return nil, err
	}
	t.akName = name.Buffer
	// Qualified name: nameAlg || H(parent's qualified name || name), with
	// a made-up parent (the verifier does not check it).
	parent := sha256.Sum256(t.ekPub)
	q := sha256.New()
	q.Write(parent[:])
	q.Write(t.akName)
	t.qname = append([]byte{0x00, 0x0b}, q.Sum(nil)...)

	var seed [16]byte
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return nil, err
	}
	t.clock0 = uint64(seed[0])<<16 | uint64(seed[1])<<8 | uint64(seed[2]) // up to ~4.6 h of earlier uptime
	t.resets = uint32(seed[4])<<24 | uint32(seed[5])<<16 | uint32(seed[6])<<8 | uint32(seed[7])
	t.restart = uint32(seed[8])<<24 | uint32(seed[9])<<16 | uint32(seed[10])<<8 | uint32(seed[11])
	for i := 0; i < 10; i++ {
		t.pcrs[i] = sha256.Sum256(append(seed[:], byte(i), 'p', 'c', 'r'))
	}
	return t, nil
}

// AKTemplate is the public area of an intact AK (as package tpm creates
// it): fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth,
// restricted, sign, noDA; ECDSA-SHA256 on P-256.
func AKTemplate() tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true,
			Restricted: true, SignEncrypt: true, NoDA: true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
		}),
	}
}

// AK returns the AK as the agent handler holds it. Its Private part is a
// placeholder: the key never leaves this SoftTPM.
func (t *SoftTPM) AK() *tpm.AK {
	return &tpm.AK{Public: bytes.Clone(t.akPub), Private: []byte("soft"), Name: bytes.Clone(t.akName)}
}

// EndorsementKey implements attest/agent.TPM (no EK certificate).
func (t *SoftTPM) EndorsementKey() (*tpm.EK, error) {
	return &tpm.EK{Public: bytes.Clone(t.ekPub)}, nil
}

func (t *SoftTPM) checkAK(ak *tpm.AK) error {
	if ak == nil || !bytes.Equal(ak.Public, t.akPub) {
		return ErrWrongAK
	}
	return nil
}

// Extend extends a SHA-256 PCR with a digest, as TPM2_PCR_Extend.
func (t *SoftTPM) Extend(pcr int, digest []byte) error {
	if pcr < 0 || pcr >= NumPCRs || len(digest) != sha256.Size {
		return ErrSelection
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.extendLocked(pcr, digest)
	return nil
}

func (t *SoftTPM) extendLocked(pcr int, digest []byte) {
	h := sha256.New()
	h.Write(t.pcrs[pcr][:])
	h.Write(digest)
	h.Sum(t.pcrs[pcr][:0])
}

// PCRs returns SHA-256 PCR values by index.
func (t *SoftTPM) PCRs(idx []int) (map[int][]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[int][]byte, len(idx))
	for _, i := range idx {
		if i < 0 || i >= NumPCRs {
			return nil, ErrSelection
		}
		out[i] = bytes.Clone(t.pcrs[i][:])
	}
	return out, nil
}

// ReadQuotedPCRs implements attest/agent.TPM: a TPMS_ATTEST of type
// quote over the selected SHA-256 PCRs and the nonce, signed by the AK
// (TPMT_SIGNATURE, ECDSA-SHA256), and the values quoted. The PCRs are
// read and quoted under one lock, so the values are the quoted ones.
func (t *SoftTPM) ReadQuotedPCRs(ak *tpm.AK, nonce []byte, sel tpm.QuoteSelection) (*tpm.Quote, digest.PCRs, error) {
	if err := t.checkAK(ak); err != nil {
		return nil, nil, err
	}
	if len(nonce) > 64 {
		return nil, nil, fmt.Errorf("%w: nonce of %d bytes", ErrSelection, len(nonce))
	}
	idx, ok := sel[digest.SHA256]
	if !ok || len(sel) != 1 || len(idx) == 0 {
		return nil, nil, fmt.Errorf("%w: only the sha256 bank", ErrSelection)
	}
	var bitmap [3]byte
	for _, i := range idx {
		if i < 0 || i >= NumPCRs {
			return nil, nil, fmt.Errorf("%w: pcr %d", ErrSelection, i)
		}
		bitmap[i/8] |= 1 << (i % 8)
	}
	vals := make(map[int][]byte, len(idx))
	d := sha256.New()
	t.mu.Lock()
	for i := 0; i < NumPCRs; i++ { // the TPM hashes in selection (index) order
		if bitmap[i/8]&(1<<(i%8)) != 0 {
			d.Write(t.pcrs[i][:])
			vals[i] = bytes.Clone(t.pcrs[i][:])
		}
	}
	t.mu.Unlock()
	clock := tpm2.TPMSClockInfo{
		Clock:        t.clock0 + uint64(time.Since(t.born).Milliseconds()),
		ResetCount:   t.resets,
		RestartCount: t.restart,
		Safe:         true,
	}
	raw := marshalQuote(t.qname, nonce, clock, firmware, bitmap[:], d.Sum(nil))
	sum := sha256.Sum256(raw)
	r, s, err := ecdsa.Sign(rand.Reader, t.ak, sum[:])
	if err != nil {
		return nil, nil, err
	}
	sig := marshalECDSASignature(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32)))
	return &tpm.Quote{Attest: raw, Signature: sig}, digest.PCRs{digest.SHA256: vals}, nil
}

// firmware is the firmware version the software TPM reports.
const firmware = 0x2000_0000_0001_0000

// marshalQuote is tpm2.Marshal of a TPMS_ATTEST of type quote over the
// SHA-256 PCRs of bitmap (go-tpm's reflection costs about 100 µs per
// quote, more than the ECDSA signature; TestMarshalQuote compares).
func marshalQuote(qname, nonce []byte, c tpm2.TPMSClockInfo, fw uint64, bitmap, digest []byte) []byte {
	b := make([]byte, 0, 128+len(qname)+len(nonce))
	b = binary.BigEndian.AppendUint32(b, uint32(tpm2.TPMGeneratedValue))
	b = binary.BigEndian.AppendUint16(b, uint16(tpm2.TPMSTAttestQuote))
	b = append2B(b, qname)
	b = append2B(b, nonce)
	b = binary.BigEndian.AppendUint64(b, c.Clock)
	b = binary.BigEndian.AppendUint32(b, c.ResetCount)
	b = binary.BigEndian.AppendUint32(b, c.RestartCount)
	safe := byte(0)
	if c.Safe {
		safe = 1
	}
	b = append(b, safe)
	b = binary.BigEndian.AppendUint64(b, fw)
	b = binary.BigEndian.AppendUint32(b, 1) // one TPMS_PCR_SELECTION
	b = binary.BigEndian.AppendUint16(b, uint16(tpm2.TPMAlgSHA256))
	b = append(b, byte(len(bitmap)))
	b = append(b, bitmap...)
	return append2B(b, digest)
}

// marshalECDSASignature is tpm2.Marshal of a TPMT_SIGNATURE (ECDSA,
// SHA-256).
func marshalECDSASignature(r, s []byte) []byte {
	b := make([]byte, 0, 8+len(r)+len(s))
	b = binary.BigEndian.AppendUint16(b, uint16(tpm2.TPMAlgECDSA))
	b = binary.BigEndian.AppendUint16(b, uint16(tpm2.TPMAlgSHA256))
	b = append2B(b, r)
	return append2B(b, s)
}

func append2B(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

// ActivateCredential implements attest/agent.TPM: TPM2_ActivateCredential
// in software. It recovers the seed with ECDH between the EK and the
// ephemeral point in encSecret (KDFe, label "IDENTITY"), checks the
// credential's integrity HMAC over the AK's name (KDFa "INTEGRITY") and
// decrypts it (KDFa "STORAGE", AES-128-CFB, zero IV). A credential made
// for another EK or another AK name fails with ErrActivation.
func (t *SoftTPM) ActivateCredential(ak *tpm.AK, credentialBlob, encSecret []byte) (secret []byte, err error) {
	if err := t.checkAK(ak); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil { // go-tpm's unmarshalling of hostile input
			secret, err = nil, fmt.Errorf("%w: %v", ErrActivation, r)
		}
	}()
	pt, err := tpm2.Unmarshal[tpm2.TPMSECCPoint](encSecret)
	if err != nil {
		return nil, fmt.Errorf("%w: secret: %v", ErrActivation, err)
	}
	if len(pt.X.Buffer) > 32 || len(pt.Y.Buffer) > 32 {
		return nil, fmt.Errorf("%w: secret: point too large", ErrActivation)
	}
	point := make([]byte, 65)
	point[0] = 4
	copy(point[1+32-len(pt.X.Buffer):33], pt.X.Buffer)
	copy(point[33+32-len(pt.Y.Buffer):], pt.Y.Buffer)
	eph, err := ecdh.P256().NewPublicKey(point)
	if err != nil {
		return nil, fmt.Errorf("%w: secret: %v", ErrActivation, err)
	}
	z, err := t.ek.ECDH(eph)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrActivation, err)
	}
	seed := tpm2.KDFe(crypto.SHA256, z, "IDENTITY", pt.X.Buffer, t.ekX, 256)

	if len(credentialBlob) < 2 {
		return nil, fmt.Errorf("%w: credential too short", ErrActivation)
	}
	n := int(credentialBlob[0])<<8 | int(credentialBlob[1])
	if n != sha256.Size || len(credentialBlob) < 2+n+2 {
		return nil, fmt.Errorf("%w: credential of bad size", ErrActivation)
	}
	integrity, encIdentity := credentialBlob[2:2+n], credentialBlob[2+n:]
	m := hmac.New(sha256.New, tpm2.KDFa(crypto.SHA256, seed, "INTEGRITY", nil, nil, 256))
	m.Write(encIdentity)
	m.Write(t.akName)
	if !hmac.Equal(m.Sum(nil), integrity) {
		return nil, ErrActivation
	}
	block, err := aes.NewCipher(tpm2.KDFa(crypto.SHA256, seed, "STORAGE", t.akName, nil, 128))
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(encIdentity))
	//lint:ignore SA1019 TPM2_ActivateCredential's credential is AES-CFB encrypted (TPM 2.0 Part 1, 24.4): the simulated TPM has no choice
	cipher.NewCFBDecrypter(block, make([]byte, block.BlockSize())).XORKeyStream(plain, encIdentity)
	d, err := tpm2.Unmarshal[tpm2.TPM2BDigest](plain)
	if err != nil || 2+len(d.Buffer) != len(plain) {
		return nil, fmt.Errorf("%w: credential does not decrypt to a digest", ErrActivation)
	}
	return d.Buffer, nil
}
