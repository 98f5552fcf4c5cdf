// SPDX-License-Identifier: Apache-2.0

package digest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// NumPCRs is the number of PCRs of a PC Client TPM (0-23).
const NumPCRs = 24

// PCRFileError is an error in a PCR file: what is wrong, at a line
// (1-based; 0: the bank named for the file). It wraps ErrPCRFile.
type PCRFileError struct {
	Line int
	Msg  string
}

func (e *PCRFileError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }
func (e *PCRFileError) Unwrap() error { return ErrPCRFile }

// ErrPCRFile is wrapped by every PCRFileError.
var ErrPCRFile = errors.New("malformed pcr file")

// ParsePCRFile parses PCR values from the bytes of a PCR file, in either
// of the forms the tools write:
//
//   - evmctl's --pcrs file: one "PCR-NN: HEX" line per PCR (as the TPM
//     1.2 sysfs "pcrs" file; the hex may be split by spaces). Its bank is
//     bank (a name such as "sha256", the "ALG," of evmctl's --pcrs
//     ALG,FILE) or, when bank is "", taken from each value's size
//     (BankForSize);
//   - the output of tpm2_pcrread: a bank line such as "sha256:", then
//     "  N : 0xHEX" lines.
//
// Blank lines are skipped. Every value must have its bank's size and
// every index be 0-23; a later line for the same PCR replaces an earlier
// one. The file is untrusted input: any error is a *PCRFileError
// (wrapping ErrPCRFile) naming the line, and no input makes it panic.
func ParsePCRFile(b []byte, bank string) (PCRs, error) {
	var cur Algo
	named, haveBank := false, false
	if bank != "" {
		a, err := ParseAlgo(bank)
		if err != nil {
			return nil, &PCRFileError{Line: 0, Msg: err.Error()}
		}
		cur, named, haveBank = a, true, true
	}
	out := PCRs{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		bad := func(format string, args ...any) error {
			return &PCRFileError{Line: line, Msg: fmt.Sprintf(format, args...)}
		}
		var idx int
		var val []byte
		var err error
		switch {
		case strings.HasPrefix(text, "PCR-"):
			k, v, ok := strings.Cut(text[4:], ":")
			if !ok {
				return nil, bad("want PCR-NN: HEX")
			}
			if idx, err = strconv.Atoi(strings.TrimSpace(k)); err != nil {
				return nil, bad("bad pcr index")
			}
			if val, err = hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(v), " ", "")); err != nil {
				return nil, bad("pcr value is not hex")
			}
			if !named {
				a, ok := BankForSize(len(val))
				if !ok {
					return nil, bad("pcr value of %d bytes matches no bank", len(val))
				}
				cur, haveBank = a, true
			}
		case strings.HasSuffix(text, ":") && !strings.Contains(text, " "):
			a, err := ParseAlgo(strings.TrimSuffix(text, ":"))
			if err != nil {
				return nil, bad("%s", err)
			}
			cur, haveBank = a, true
			continue
		default:
			k, v, ok := strings.Cut(text, ":")
			if !ok || !haveBank {
				return nil, bad("want \"N : 0xHEX\" after a bank line such as \"sha256:\"")
			}
			if idx, err = strconv.Atoi(strings.TrimSpace(k)); err != nil {
				return nil, bad("bad pcr index")
			}
			if val, err = hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(v), "0x")); err != nil {
				return nil, bad("pcr value is not hex")
			}
		}
		if idx < 0 || idx >= NumPCRs {
			return nil, bad("pcr index %d out of range", idx)
		}
		if len(val) != cur.Size() {
			return nil, bad("%s value of %d bytes", cur, len(val))
		}
		if out[cur] == nil {
			out[cur] = map[int][]byte{}
		}
		out[cur][idx] = val
	}
	if err := sc.Err(); err != nil {
		return nil, &PCRFileError{Line: line + 1, Msg: err.Error()}
	}
	return out, nil
}

// BankForSize guesses the PCR bank of a PCR value or template digest
// from its size: sha1, sha256, sha384 or sha512.
func BankForSize(n int) (Algo, bool) {
	switch n {
	case 20:
		return SHA1, true
	case 32:
		return SHA256, true
	case 48:
		return SHA384, true
	case 64:
		return SHA512, true
	}
	return 0, false
}
