// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/readfile"
	"github.com/intactsec/intact/mlog"
)

// readPCRFile reads trusted PCR values from a file, in one of two forms:
//
//   - evmctl's --pcrs file, one "PCR-NN: HEX" line per PCR (as the TPM 1.2
//     sysfs "pcrs" file); the bank is named as "ALG,FILE" or, if not,
//     taken from the digest size (20 sha1, 32 sha256, 48 sha384, 64 sha512)
//   - the output of tpm2_pcrread: "sha256:" lines followed by
//     "  N : 0xHEX" lines.
func readPCRFile(arg string, into digest.PCRs) error {
	path, bankName, named := arg, "", false
	if i := strings.IndexByte(arg, ','); i > 0 {
		if _, err := digest.ParseAlgo(arg[:i]); err == nil {
			bankName, path, named = arg[:i], arg[i+1:], true
		}
	}
	b, err := readNamed("pcr file", path, readfile.Small)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	var cur digest.Algo
	haveBank := false
	if named {
		cur, _ = digest.ParseAlgo(bankName)
		haveBank = true
	}
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		bad := func(msg string) error { return fmt.Errorf("%s: line %d: %s", path, line, msg) }
		var idx int
		var val []byte
		switch {
		case strings.HasPrefix(text, "PCR-"):
			k, v, ok := strings.Cut(text[4:], ":")
			if !ok {
				return bad("want PCR-NN: HEX")
			}
			if idx, err = strconv.Atoi(strings.TrimSpace(k)); err != nil {
				return bad("bad pcr index")
			}
			if val, err = hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(v), " ", "")); err != nil {
				return bad("pcr value is not hex")
			}
			if !named {
				a, ok := mlog.BankForSize(len(val))
				if !ok {
					return bad(fmt.Sprintf("pcr value of %d bytes matches no bank", len(val)))
				}
				cur, haveBank = a, true
			}
		case strings.HasSuffix(text, ":") && !strings.Contains(text, " "):
			a, err := digest.ParseAlgo(strings.TrimSuffix(text, ":"))
			if err != nil {
				return bad(err.Error())
			}
			cur, haveBank = a, true
			continue
		default:
			k, v, ok := strings.Cut(text, ":")
			if !ok || !haveBank {
				return bad("want \"N : 0xHEX\" after a bank line such as \"sha256:\"")
			}
			if idx, err = strconv.Atoi(strings.TrimSpace(k)); err != nil {
				return bad("bad pcr index")
			}
			if val, err = hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(v), "0x")); err != nil {
				return bad("pcr value is not hex")
			}
		}
		if idx < 0 || idx > 23 {
			return bad(fmt.Sprintf("pcr index %d out of range", idx))
		}
		if len(val) != cur.Size() {
			return bad(fmt.Sprintf("%s value of %d bytes", cur, len(val)))
		}
		if into[cur] == nil {
			into[cur] = map[int][]byte{}
		}
		into[cur][idx] = val
	}
	return sc.Err()
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
