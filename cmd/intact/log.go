// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/atomicfile"
	"github.com/intactsec/intact/mlog"
)

const logUsage = `
Usage:
    intact log show FILE [--json]
    intact log convert --to ascii|binary FILE [-o OUT]
    intact log replay FILE [--tpm SPEC | --pcrs [ALG,]PCRFILE...] [--banks LIST] [--sha1-padded] [--json]

Reads IMA measurement lists: the kernel's binary_runtime_measurements
(and _sha256, ...) or ascii_runtime_measurements under
/sys/kernel/security/ima/, or a list written by "intact measure". Binary
or ASCII is detected; the bank of a binary list is taken from a _ALG file
name suffix, else --bank (default sha1).

show     prints the records (the kernel's ASCII format, or JSON) and checks
         every template hash; exit 1 if one does not match its data.
convert  writes the list in the other format, byte-identical to the
         kernel's; binary output is refused on a terminal.
replay   without PCR values prints the values the list replays to, per
         bank. With --tpm or --pcrs it finds, bank by bank, the prefix of
         the list after which the PCRs hold the trusted values (the list may
         have grown since they were read) and prints how many records they
         vouch for; exit 1 if no prefix matches. --pcrs reads evmctl's
         "PCR-NN: HEX" files (ALG, names the bank) or tpm2_pcrread output.
         --sha1-padded replays the other banks as kernels before 5.8
         extended them (the SHA-1 template digest, zero-padded).

Examples:
    intact log show /sys/kernel/security/ima/binary_runtime_measurements
    intact log convert --to ascii binary_runtime_measurements > list.txt
    intact log replay /sys/kernel/security/ima/binary_runtime_measurements --tpm /dev/tpmrm0
`

func cmdLog(e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("log", "no subcommand (show, convert or replay)")
	}
	switch args[0] {
	case "show":
		return cmdLogShow(e, args[1:])
	case "convert":
		return cmdLogConvert(e, args[1:])
	case "replay":
		return cmdLogReplay(e, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, strings.TrimLeft(logUsage, "\n"))
		return errHelp
	}
	return usageErrorf("log", "unknown subcommand %q (want show, convert or replay)", args[0])
}

// logFlags are the flags that say how to read a list.
type logFlags struct {
	bank      string
	bigEndian bool
}

func (l *logFlags) register(f *flagSet) {
	f.StringVar(&l.bank, "bank", "", "bank of the template digests of a binary list (default: from a _ALG file name, else sha1)")
	f.BoolVar(&l.bigEndian, "big-endian", false, "the list was written by a big-endian kernel without ima_canonical_fmt")
}

func (l *logFlags) read(cmd string, files []string) (*mlog.List, error) {
	if len(files) != 1 {
		return nil, usageErrorf(cmd, "want exactly one FILE, got %d", len(files))
	}
	opts := mlog.Options{BigEndian: l.bigEndian}
	if l.bank != "" {
		a, err := digest.ParseAlgo(l.bank)
		if err != nil || a.Size() == 0 {
			return nil, usageErrorf(cmd, "bad --bank %q", l.bank)
		}
		opts.Bank = a
	}
	list, err := mlog.ReadFile(files[0], opts)
	if errors.Is(err, mlog.ErrFormat) {
		return nil, withHint(err, "is it a measurement list of the kernel's standard layout? try --bank or --big-endian")
	}
	return list, err
}

// recordJSON is one record in --json output.
type recordJSON struct {
	Index          int               `json:"index"`
	PCR            int               `json:"pcr"`
	TemplateDigest string            `json:"template_digest"`
	Template       string            `json:"template"`
	Violation      bool              `json:"violation,omitempty"`
	FileDigest     string            `json:"file_digest,omitempty"`
	Name           *string           `json:"name,omitempty"`
	Signature      string            `json:"signature,omitempty"`
	Fields         []recordFieldJSON `json:"fields,omitempty"`
	TemplateHashOK *bool             `json:"template_hash_ok,omitempty"`
}

type recordFieldJSON struct {
	ID   string `json:"id,omitempty"`
	Data string `json:"data"` // hex
}

func toRecordJSON(i int, r *mlog.Record, bank digest.Algo) recordJSON {
	j := recordJSON{Index: i, PCR: r.PCR, TemplateDigest: hex.EncodeToString(r.Digest), Template: r.Template, Violation: r.Violation()}
	if algo, d, ok := r.FileDigest(); ok {
		j.FileDigest = algo + ":" + hex.EncodeToString(d)
	}
	if n, ok := r.Name(); ok {
		j.Name = &n
	}
	if s, ok := r.Signature(); ok {
		j.Signature = hex.EncodeToString(s)
	}
	if !mlog.KnownTemplate(r.Template) {
		fields, _ := r.Fields()
		for _, f := range fields {
			j.Fields = append(j.Fields, recordFieldJSON{ID: f.ID, Data: hex.EncodeToString(f.Data)})
		}
	}
	if !r.Violation() {
		ok := r.CheckTemplateDigest(bank) == nil
		j.TemplateHashOK = &ok
	}
	return j
}

func cmdLogShow(e *env, args []string) error {
	f := newFlags(e, "log show", logUsage)
	var lf logFlags
	lf.register(f)
	asJSON := f.Bool("json", false, "print one JSON object per record")
	files, err := f.parse(args)
	if err != nil {
		return err
	}
	list, err := lf.read("log show", files)
	if err != nil {
		return err
	}
	bad := -1
	enc := json.NewEncoder(e.stdout)
	for i, r := range list.UnverifiedRecords() {
		if *asJSON {
			j := toRecordJSON(i, &r, list.Bank())
			if j.TemplateHashOK != nil && !*j.TemplateHashOK && bad < 0 {
				bad = i
			}
			if err := enc.Encode(j); err != nil {
				return err
			}
			continue
		}
		line, err := r.AppendASCII(nil)
		if err != nil {
			return fmt.Errorf("%s: record %d: %w", files[0], i, err)
		}
		if _, err := e.stdout.Write(line); err != nil {
			return err
		}
		if bad < 0 && r.CheckTemplateDigest(list.Bank()) != nil {
			bad = i
		}
	}
	if bad >= 0 {
		errorf(e, "%s: record %d: the template hash does not match the template data", files[0], bad)
		return errIntegrity
	}
	return nil
}

func cmdLogConvert(e *env, args []string) error {
	f := newFlags(e, "log convert", logUsage)
	var lf logFlags
	lf.register(f)
	to := f.String("to", "", "output format: ascii or binary")
	out := f.String("o", "", "write to this file (atomically) instead of standard output")
	files, err := f.parse(args)
	if err != nil {
		return err
	}
	if *to != "ascii" && *to != "binary" {
		return usageErrorf("log convert", "--to must be ascii or binary")
	}
	list, err := lf.read("log convert", files)
	if err != nil {
		return err
	}
	var b []byte
	if *to == "ascii" {
		b, err = list.MarshalASCII()
	} else {
		b, err = list.MarshalBinary()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", files[0], err)
	}
	if *out != "" {
		return atomicfile.WriteFile(*out, b, 0o644, false)
	}
	if *to == "binary" {
		if fl, ok := e.stdout.(*os.File); ok && isTerminal(fl) {
			return withHint(errors.New("refusing to write a binary list to a terminal"), "use -o FILE or redirect standard output")
		}
	}
	_, err = e.stdout.Write(b)
	return err
}

// replayJSON is the --json output of log replay.
type replayJSON struct {
	Records  int                          `json:"records"`
	Values   map[string]map[string]string `json:"values,omitempty"`   // without trusted values
	Verified *int                         `json:"verified,omitempty"` // records vouched for
	Prefix   map[string]int               `json:"prefix,omitempty"`   // matched prefix per bank
	Error    string                       `json:"error,omitempty"`
	// BootAggregate: "matches the boot pcrs", "mismatch", or absent when
	// the list has none or the boot PCRs of its bank were not given.
	BootAggregate string `json:"boot_aggregate,omitempty"`
}

func cmdLogReplay(e *env, args []string) error {
	f := newFlags(e, "log replay", logUsage)
	var lf logFlags
	lf.register(f)
	spec := f.String("tpm", "", "read the trusted PCR values from this TPM (/dev/tpmrm0, swtpm:HOST:PORT, sim)")
	var pcrFiles stringList
	f.Var(&pcrFiles, "pcrs", "read trusted PCR values from `[ALG,]FILE` (repeatable)")
	bankList := f.String("banks", "sha1,sha256", "banks to compute without trusted values")
	asJSON := f.Bool("json", false, "print the result as JSON")
	padded := f.Bool("sha1-padded", false, "replay as kernels before 5.8: every bank extended with the zero-padded SHA-1 template digest")
	files, err := f.parse(args)
	if err != nil {
		return err
	}
	if *spec != "" && len(pcrFiles) > 0 {
		return usageErrorf("log replay", "give --tpm or --pcrs, not both")
	}
	ropts := mlog.ReplayOptions{SHA1Padded: *padded}
	banks, err := parseBanks("log replay", *bankList)
	if err != nil {
		return err
	}
	list, err := lf.read("log replay", files)
	if err != nil {
		return err
	}
	if *spec == "" && len(pcrFiles) == 0 {
		return printComputed(e, list, banks, ropts, *asJSON)
	}
	// The list's PCRs, and the boot PCRs for its boot_aggregate.
	trusted, err := readTrusted(e, *spec, pcrFiles, append([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, listPCRs(list)...))
	if err != nil {
		return err
	}
	r, err := replayTrusted(list, trusted, ropts)
	if err != nil {
		return err
	}
	return printReplay(e, files[0], list.Len(), r, *asJSON)
}

// readTrusted reads trusted PCR values from the files (--pcrs) or, with a
// TPM spec, the TPM's pcrs.
func readTrusted(e *env, spec string, files []string, pcrs []int) (digest.PCRs, error) {
	if spec != "" {
		return readTPMPCRs(e, spec, pcrs)
	}
	trusted := digest.PCRs{}
	for _, p := range files {
		if err := readPCRFile(p, trusted); err != nil {
			return nil, err
		}
	}
	return trusted, nil
}

// replayed is what a list's replay against trusted values found.
type replayed struct {
	trusted  digest.PCRs    // the values compared: those of the PCRs the list extends
	verified *mlog.Verified // nil if err
	bootMsg  string         // what the boot_aggregate check found ("" not checked)
	err      error          // the replay's or the boot_aggregate's failure
}

// replayTrusted replays list against the trusted values of the PCRs it
// extends and checks its boot_aggregate against the boot PCRs. The error
// is for trusted values that hold none of the list's PCRs; what the replay
// finds is in the result.
func replayTrusted(list *mlog.List, trusted digest.PCRs, opts mlog.ReplayOptions) (*replayed, error) {
	bootMsg, bootErr := checkBootAggregate(list, trusted)
	// Only the PCRs the list extends are compared.
	used := listPCRs(list)
	compared := digest.PCRs{}
	for b, m := range trusted {
		for i, v := range m {
			if containsInt(used, i) {
				if compared[b] == nil {
					compared[b] = map[int][]byte{}
				}
				compared[b][i] = v
			}
		}
	}
	if len(compared) == 0 {
		return nil, fmt.Errorf("no trusted value for the pcrs the list extends (%v)", used)
	}
	v, err := list.ReplayWith(compared, opts)
	if err == nil && bootErr != nil {
		err = bootErr
	}
	return &replayed{trusted: compared, verified: v, bootMsg: bootMsg, err: err}, nil
}

// printReplay prints what the replay of the list in file (n records)
// found, as text or JSON, and returns its exit status: 1 for an integrity
// failure, 2 for another.
func printReplay(e *env, file string, n int, r *replayed, asJSON bool) error {
	if asJSON {
		j := replayJSON{Records: n, BootAggregate: r.bootMsg}
		if r.err != nil {
			j.Error = r.err.Error()
		} else {
			verified := len(r.verified.Records)
			j.Verified = &verified
			j.Prefix = map[string]int{}
			for b, p := range r.verified.PrefixByBank {
				j.Prefix[b.String()] = p
			}
		}
		if err := json.NewEncoder(e.stdout).Encode(j); err != nil {
			return err
		}
	}
	if r.err != nil {
		if !asJSON {
			errorf(e, "%s: %v", file, r.err)
		}
		var re *mlog.ReplayError
		var th *mlog.TemplateHashError
		if errors.As(r.err, &re) || errors.As(r.err, &th) || errors.Is(r.err, mlog.ErrBootAggregate) {
			return errIntegrity
		}
		return &exitError{code: 2}
	}
	if !asJSON {
		for _, b := range sortedBanks(r.trusted) {
			fmt.Fprintf(e.stdout, "%s: pcrs %v match after record %d of %d\n", b, sortedPCRs(r.trusted[b]), r.verified.PrefixByBank[b], n)
		}
		fmt.Fprintf(e.stdout, "verified %d of %d records\n", len(r.verified.Records), n)
		if r.bootMsg != "" {
			fmt.Fprintf(e.stdout, "boot_aggregate: %s\n", r.bootMsg)
		}
	}
	return nil
}

// checkBootAggregate checks the list's boot_aggregate record if the list
// has one and the trusted values hold the boot PCRs of its bank. It
// returns what it found ("" if it could not check).
func checkBootAggregate(list *mlog.List, trusted digest.PCRs) (string, error) {
	has := false
	for _, r := range list.UnverifiedRecords() {
		if n, ok := r.Name(); ok && n == mlog.BootAggregateName {
			has = true
		}
	}
	if !has {
		return "", nil
	}
	err := list.CheckBootAggregate(trusted)
	switch {
	case err == nil:
		return "matches the boot pcrs", nil
	case errors.Is(err, mlog.ErrBootAggregate):
		return "mismatch", err
	}
	return "", nil // the boot PCRs of its bank were not given
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// listPCRs returns the PCRs the list extends, in order.
func listPCRs(l *mlog.List) []int {
	var seen [mlog.NumPCRs]bool
	for _, r := range l.UnverifiedRecords() {
		seen[r.PCR] = true
	}
	var out []int
	for i, s := range seen {
		if s {
			out = append(out, i)
		}
	}
	return out
}

func printComputed(e *env, list *mlog.List, banks []digest.Algo, opts mlog.ReplayOptions, asJSON bool) error {
	vals, err := list.ComputeWith(opts, banks...)
	if err != nil {
		return err
	}
	if asJSON {
		j := replayJSON{Records: list.Len(), Values: map[string]map[string]string{}}
		for b, m := range vals {
			j.Values[b.String()] = map[string]string{}
			for i, v := range m {
				j.Values[b.String()][fmt.Sprint(i)] = hex.EncodeToString(v)
			}
		}
		return json.NewEncoder(e.stdout).Encode(j)
	}
	for _, b := range sortedBanks(vals) {
		for _, i := range sortedPCRs(vals[b]) {
			fmt.Fprintf(e.stdout, "%s pcr %d: %x\n", b, i, vals[b][i])
		}
	}
	fmt.Fprintf(e.stdout, "(%d records; unverified: the values the list claims)\n", list.Len())
	return nil
}
