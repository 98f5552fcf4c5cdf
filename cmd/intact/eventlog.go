// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/eventlog"
)

const eventlogUsage = `
Usage: intact eventlog replay FILE [--tpm SPEC | --pcrs [ALG,]PCRFILE...] [--json]

Replays a TCG boot event log (/sys/kernel/security/tpm0/binary_bios_measurements,
SHA-1 or crypto-agile) and lists the boot components it records (PCRs 0-9:
firmware, boot loader, kernel, command line).

Without PCR values it prints the values the log replays to in each of its
banks, and the components as the log claims them (unverified). With --tpm
or --pcrs it verifies PCRs 0-9 of the log against those values bank by
bank and lists only the components they vouch for; exit 1 if a PCR does
not match. (Later PCRs are extended after boot by IMA and systemd, so the
firmware's log does not account for their current values.)

A component's description comes from the event data; "(not measured)"
marks descriptions the digest does not cover (a loaded image's path).

Examples:
    intact eventlog replay /sys/kernel/security/tpm0/binary_bios_measurements
    intact eventlog replay binary_bios_measurements --tpm /dev/tpmrm0 --json
`

func cmdEventlog(e *env, args []string) error {
	if len(args) == 0 {
		return usageErrorf("eventlog", "no subcommand (want replay)")
	}
	switch args[0] {
	case "replay":
		return cmdEventlogReplay(e, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, strings.TrimLeft(eventlogUsage, "\n"))
		return errHelp
	}
	return usageErrorf("eventlog", "unknown subcommand %q (want replay)", args[0])
}

type componentJSON struct {
	PCR          int    `json:"pcr"`
	Type         string `json:"type"`
	Digest       string `json:"digest"`
	Description  string `json:"description"`
	DataMeasured bool   `json:"data_measured"`
}

type eventlogJSON struct {
	Banks      []string                     `json:"banks"`
	Values     map[string]map[string]string `json:"values,omitempty"`
	Verified   bool                         `json:"verified"`
	Components []componentJSON              `json:"components"`
	Error      string                       `json:"error,omitempty"`
}

func cmdEventlogReplay(e *env, args []string) error {
	f := newFlags(e, "eventlog replay", eventlogUsage)
	spec := f.String("tpm", "", "verify against this TPM's PCRs (/dev/tpmrm0, swtpm:HOST:PORT, sim)")
	var pcrFiles stringList
	f.Var(&pcrFiles, "pcrs", "verify against PCR values from `[ALG,]FILE` (repeatable)")
	asJSON := f.Bool("json", false, "print the result as JSON")
	files, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return usageErrorf("eventlog replay", "want exactly one FILE, got %d", len(files))
	}
	if *spec != "" && len(pcrFiles) > 0 {
		return usageErrorf("eventlog replay", "give --tpm or --pcrs, not both")
	}
	l, err := eventlog.ReadFile(files[0])
	if err != nil {
		return err
	}
	vals, err := l.Replay()
	if err != nil {
		return fmt.Errorf("%s: %w", files[0], err)
	}
	var trusted digest.PCRs // nil: nothing to verify against
	if *spec != "" || len(pcrFiles) > 0 {
		if trusted, err = readTrusted(e, *spec, pcrFiles, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}); err != nil {
			return err
		}
	}
	out, bank, verr, err := judgeEventlog(l, vals, trusted)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := json.NewEncoder(e.stdout).Encode(out); err != nil {
			return err
		}
	} else {
		printEventlog(e, vals, out, bank)
	}
	if verr != nil {
		if !*asJSON {
			errorf(e, "%s: %v", files[0], verr)
		}
		var re *eventlog.ReplayError
		if errors.As(verr, &re) {
			return errIntegrity
		}
		return &exitError{code: 2}
	}
	return nil
}

// judgeEventlog describes the log l, which replays to vals: its banks and
// values, and its components in the strongest bank, as the log claims them
// (trusted nil) or as far as the trusted values of PCRs 0-9 vouch for them
// (verified, or none if verr says why not). The error is for trusted
// values that hold no bank and PCR the log has, or a log whose events
// cannot be listed.
func judgeEventlog(l *eventlog.Log, vals, trusted digest.PCRs) (out eventlogJSON, bank digest.Algo, verr, err error) {
	out = eventlogJSON{Values: map[string]map[string]string{}}
	for _, b := range l.Banks() {
		out.Banks = append(out.Banks, b.String())
	}
	for b, m := range vals {
		out.Values[b.String()] = map[string]string{}
		for i, v := range m {
			out.Values[b.String()][fmt.Sprint(i)] = hex.EncodeToString(v)
		}
	}
	bank = l.Banks()[len(l.Banks())-1] // the strongest bank the log has
	var events []eventlog.Event
	if trusted != nil {
		trusted = onlyLogged(trusted, vals)
		if len(trusted) == 0 {
			return out, bank, nil, errors.New("no trusted value for a bank and pcr the log has")
		}
		bank = sortedBanks(trusted)[len(trusted)-1]
		// Verify the strongest bank first: its events are listed.
		ordered := digest.PCRs{bank: trusted[bank]}
		events, verr = l.Verify(ordered)
		if verr == nil {
			_, verr = l.Verify(trusted)
		}
		out.Verified = verr == nil
	} else {
		if events, err = l.UnverifiedEvents(bank); err != nil {
			return out, bank, nil, err
		}
	}
	if verr != nil {
		out.Error = verr.Error()
		events = nil
	}
	for _, c := range eventlog.Components(events, bank) {
		out.Components = append(out.Components, componentJSON{PCR: c.PCR, Type: c.Type, Digest: hex.EncodeToString(c.Digest), Description: c.Description, DataMeasured: c.DataMeasured})
	}
	return out, bank, verr, nil
}

// onlyLogged keeps the trusted values of banks and PCRs 0-9 the log has.
// Later PCRs are left out: programs extend some of them after boot (11,
// 12, 13, 15 by systemd, 10 by IMA), so the TPM's values no longer match
// the firmware's log.
func onlyLogged(trusted, logged digest.PCRs) digest.PCRs {
	out := digest.PCRs{}
	for b, m := range trusted {
		for i, v := range m {
			if _, ok := logged[b][i]; ok && i <= 9 {
				if out[b] == nil {
					out[b] = map[int][]byte{}
				}
				out[b][i] = v
			}
		}
	}
	return out
}

func printEventlog(e *env, vals digest.PCRs, out eventlogJSON, bank digest.Algo) {
	for _, b := range sortedBanks(vals) {
		for _, i := range sortedPCRs(vals[b]) {
			fmt.Fprintf(e.stdout, "%s pcr %d: %x\n", b, i, vals[b][i])
		}
	}
	state := "unverified: as the log claims them"
	if out.Verified {
		state = "verified against the pcrs"
	}
	fmt.Fprintf(e.stdout, "components (%s, %s digests):\n", state, bank)
	for _, c := range out.Components {
		note := ""
		if !c.DataMeasured {
			note = " (not measured)"
		}
		fmt.Fprintf(e.stdout, "  pcr %d %s %s%s\n", c.PCR, c.Type, c.Description, note)
	}
}
