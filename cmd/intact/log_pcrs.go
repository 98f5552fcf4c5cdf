// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/readfile"
)

// readPCRFile reads trusted PCR values from a file into into: an
// evmctl --pcrs file ("ALG,FILE" names its bank, else each value's size
// does) or tpm2_pcrread's output (digest.ParsePCRFile).
func readPCRFile(arg string, into digest.PCRs) error {
	path, bank := arg, ""
	if i := strings.IndexByte(arg, ','); i > 0 {
		if _, err := digest.ParseAlgo(arg[:i]); err == nil {
			bank, path = arg[:i], arg[i+1:]
		}
	}
	b, err := readNamed("pcr file", path, readfile.Small)
	if err != nil {
		return err
	}
	vals, err := digest.ParsePCRFile(b, bank)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for a, m := range vals {
		if into[a] == nil {
			into[a] = map[int][]byte{}
		}
		maps.Copy(into[a], m)
	}
	return nil
}

// readTPMPCRs reads pcrs in every allocated bank intact supports.
func readTPMPCRs(e *env, spec string, pcrs []int) (digest.PCRs, error) {
	t, err := openTPM(e, spec)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	banks, err := t.Banks()
	if err != nil {
		return nil, err
	}
	out := digest.PCRs{}
	for _, b := range banks {
		algo, ok := digest.AlgoFor(b.Hash)
		if !ok {
			continue
		}
		v, err := t.ReadPCRs(b.Hash, pcrs)
		if err != nil {
			return nil, err
		}
		out[algo] = v
	}
	return out, nil
}

// sortedBanks returns the banks of v in id order.
func sortedBanks(v digest.PCRs) []digest.Algo {
	var out []digest.Algo
	for b := range v {
		out = append(out, b)
	}
	slices.Sort(out)
	return out
}

func sortedPCRs(m map[int][]byte) []int {
	var out []int
	for i := range m {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

// parseBanks parses a comma-separated list of PCR banks.
func parseBanks(cmd, s string) ([]digest.Algo, error) {
	var out []digest.Algo
	for _, n := range strings.Split(s, ",") {
		a, err := digest.ParseAlgo(strings.TrimSpace(n))
		if err != nil {
			return nil, usageErrorf(cmd, "%v", err)
		}
		if _, ok := a.CryptoHash(); !ok {
			return nil, usageErrorf(cmd, "pcr bank %s is not supported", a)
		}
		out = append(out, a)
	}
	return out, nil
}
