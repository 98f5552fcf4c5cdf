// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"crypto"
	_ "crypto/sha1" // PCR banks
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2"

	"github.com/intactsec/intact/digest"
)

// NumPCRs is the number of PCRs of a PC Client TPM (0-23).
const NumPCRs = 24

// banks maps the PCR banks this package handles to their TPM algorithm.
var banks = []struct {
	hash crypto.Hash
	alg  tpm2.TPMAlgID
	name string
}{
	{crypto.SHA1, tpm2.TPMAlgSHA1, "sha1"},
	{crypto.SHA256, tpm2.TPMAlgSHA256, "sha256"},
	{crypto.SHA384, tpm2.TPMAlgSHA384, "sha384"},
	{crypto.SHA512, tpm2.TPMAlgSHA512, "sha512"},
}

// BankName returns the name of a PCR bank as tpm2-tools and IMA spell it
// ("sha256"), or "" for a hash that is not a bank this package handles.
func BankName(h crypto.Hash) string {
	for _, b := range banks {
		if b.hash == h {
			return b.name
		}
	}
	return ""
}

// ParseBank parses a bank name ("sha1", "sha256", "sha384", "sha512").
func ParseBank(name string) (crypto.Hash, error) {
	for _, b := range banks {
		if b.name == name {
			return b.hash, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown pcr bank %q", ErrBadPCRs, name)
}

func algOf(h crypto.Hash) (tpm2.TPMAlgID, bool) {
	for _, b := range banks {
		if b.hash == h {
			return b.alg, true
		}
	}
	return 0, false
}

// ParsePCRList parses a comma-separated list of PCR indexes ("0,2,4,7").
// The list must be non-empty, each index in 0-23 and none repeated. The
// result is sorted.
func ParsePCRList(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty pcr list", ErrBadPCRs)
	}
	var pcrs []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n >= NumPCRs || f != strconv.Itoa(n) {
			return nil, fmt.Errorf("%w: %q is not a pcr index (0-%d)", ErrBadPCRs, f, NumPCRs-1)
		}
		if slices.Contains(pcrs, n) {
			return nil, fmt.Errorf("%w: pcr %d listed twice", ErrBadPCRs, n)
		}
		pcrs = append(pcrs, n)
	}
	slices.Sort(pcrs)
	return pcrs, nil
}

func checkPCRs(pcrs []int) error {
	if len(pcrs) == 0 {
		return fmt.Errorf("%w: no pcrs selected", ErrBadPCRs)
	}
	for i, p := range pcrs {
		if p < 0 || p >= NumPCRs {
			return fmt.Errorf("%w: pcr %d out of range (0-%d)", ErrBadPCRs, p, NumPCRs-1)
		}
		if slices.Contains(pcrs[:i], p) {
			return fmt.Errorf("%w: pcr %d listed twice", ErrBadPCRs, p)
		}
	}
	return nil
}

// Bank is an allocated PCR bank: its hash and the PCRs allocated in it.
type Bank struct {
	Hash crypto.Hash
	PCRs []int
}

// Banks returns the allocated PCR banks (TPM_CAP_PCRS) that this package
// handles, in the order sha1, sha256, sha384, sha512. Banks with no PCR
// allocated are left out.
func (t *TPM) Banks() ([]Bank, error) {
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, Property: 0, PropertyCount: 1}.Execute(t.tr)
	if err != nil {
		return nil, wrap("read pcr banks", err)
	}
	sel, err := rsp.CapabilityData.Data.AssignedPCR()
	if err != nil {
		return nil, wrap("read pcr banks", err)
	}
	var out []Bank
	for _, b := range banks {
		for _, s := range sel.PCRSelections {
			if s.Hash != b.alg {
				continue
			}
			if pcrs := selectedPCRs(s.PCRSelect); len(pcrs) > 0 {
				out = append(out, Bank{Hash: b.hash, PCRs: pcrs})
			}
		}
	}
	return out, nil
}

func selectedPCRs(bitmap []byte) []int {
	var pcrs []int
	for i, b := range bitmap {
		for bit := 0; bit < 8; bit++ {
			if b&(1<<bit) != 0 {
				pcrs = append(pcrs, i*8+bit)
			}
		}
	}
	return pcrs
}

func pcrBitmap(pcrs []int) []byte {
	bm := make([]byte, 3)
	for _, p := range pcrs {
		bm[p/8] |= 1 << (p % 8)
	}
	return bm
}

func selection(alg tpm2.TPMAlgID, pcrs []int) tpm2.TPMLPCRSelection {
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
		{Hash: alg, PCRSelect: pcrBitmap(pcrs)},
	}}
}

// ReadPCRs reads the given PCRs of one bank; the result maps each index
// to its value.
func (t *TPM) ReadPCRs(bank crypto.Hash, pcrs []int) (map[int][]byte, error) {
	const op = "read pcrs"
	alg, ok := algOf(bank)
	if !ok {
		return nil, &Error{Op: op, Kind: ErrBadPCRs, Err: fmt.Errorf("unsupported bank %v", bank)}
	}
	if err := checkPCRs(pcrs); err != nil {
		return nil, &Error{Op: op, Err: err}
	}
	out := make(map[int][]byte, len(pcrs))
	want := slices.Clone(pcrs)
	// A TPM returns at most 8 PCRs per TPM2_PCR_Read, and only those it
	// has: ask again for the rest until nothing new comes back.
	for len(want) > 0 {
		rsp, err := tpm2.PCRRead{PCRSelectionIn: selection(alg, want)}.Execute(t.tr)
		if err != nil {
			return nil, wrap(op, err)
		}
		got := 0
		vals := rsp.PCRValues.Digests
		for _, s := range rsp.PCRSelectionOut.PCRSelections {
			if s.Hash != alg {
				continue
			}
			for _, p := range selectedPCRs(s.PCRSelect) {
				if len(vals) == 0 {
					return nil, &Error{Op: op, Kind: ErrProtocol, Err: errors.New("fewer values than selected pcrs")}
				}
				if len(vals[0].Buffer) != bank.Size() {
					return nil, &Error{Op: op, Kind: ErrProtocol, Err: fmt.Errorf("pcr %d: %d-byte value in the %s bank", p, len(vals[0].Buffer), BankName(bank))}
				}
				out[p] = vals[0].Buffer
				vals = vals[1:]
				want = slices.DeleteFunc(want, func(x int) bool { return x == p })
				got++
			}
		}
		if got == 0 {
			return nil, &Error{Op: op, Kind: ErrBadPCRs, Err: fmt.Errorf("pcrs %v not allocated in the %s bank", want, BankName(bank))}
		}
	}
	return out, nil
}

// ReadAllPCRs reads every allocated PCR of every allocated bank.
func (t *TPM) ReadAllPCRs() (digest.PCRs, error) {
	bs, err := t.Banks()
	if err != nil {
		return nil, err
	}
	out := make(digest.PCRs, len(bs))
	for _, b := range bs {
		v, err := t.ReadPCRs(b.Hash, b.PCRs)
		if err != nil {
			return nil, err
		}
		a, _ := digest.AlgoFor(b.Hash)
		out[a] = v
	}
	return out, nil
}

// ExtendPCR extends pcr in every allocated bank with that bank's digest
// from digests. A digest must be given for each allocated bank (so that
// the banks do not diverge) and for no other bank, each of the bank's
// size.
func (t *TPM) ExtendPCR(pcr int, digests map[crypto.Hash][]byte) error {
	op := fmt.Sprintf("extend pcr %d", pcr)
	if err := checkPCRs([]int{pcr}); err != nil {
		return &Error{Op: op, Err: err}
	}
	bs, err := t.Banks()
	if err != nil {
		return err
	}
	var vals tpm2.TPMLDigestValues
	for _, b := range bs {
		d, ok := digests[b.Hash]
		if !ok {
			return &Error{Op: op, Kind: ErrBadPCRs, Err: fmt.Errorf("no digest for the allocated %s bank", BankName(b.Hash))}
		}
		if len(d) != b.Hash.Size() {
			return &Error{Op: op, Kind: ErrBadPCRs, Err: fmt.Errorf("%d-byte digest for the %s bank", len(d), BankName(b.Hash))}
		}
		alg, _ := algOf(b.Hash)
		vals.Digests = append(vals.Digests, tpm2.TPMTHA{HashAlg: alg, Digest: d})
	}
	if len(digests) != len(vals.Digests) {
		return &Error{Op: op, Kind: ErrBadPCRs, Err: errors.New("digest given for a bank that is not allocated")}
	}
	_, err = tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   vals,
	}.Execute(t.tr)
	return wrap(op, err)
}

// ExtendPCRData hashes data with each allocated bank's hash and extends
// pcr with the results (what tpm2_pcrextend does with a digest per bank
// computed from the same event data).
func (t *TPM) ExtendPCRData(pcr int, data []byte) error {
	bs, err := t.Banks()
	if err != nil {
		return err
	}
	digests := make(map[crypto.Hash][]byte, len(bs))
	for _, b := range bs {
		h := b.Hash.New()
		h.Write(data)
		digests[b.Hash] = h.Sum(nil)
	}
	return t.ExtendPCR(pcr, digests)
}

// BankHashes returns the hashes of the allocated banks (what
// mlog.Measurer extends).
func (t *TPM) BankHashes() ([]crypto.Hash, error) {
	bs, err := t.Banks()
	if err != nil {
		return nil, err
	}
	out := make([]crypto.Hash, len(bs))
	for i, b := range bs {
		out[i] = b.Hash
	}
	return out, nil
}
