// SPDX-License-Identifier: Apache-2.0

package verifier_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/attest/ear"
	"github.com/intactsec/intact/attest/verifier"
	"github.com/intactsec/intact/bootpolicy"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/eventlog"
	"github.com/intactsec/intact/internal/testenv"
	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/store"
)

// An agent whose runtime policy names a measured-boot policy learned
// from its boot log is trusted (the boot judged: EAR configuration 2);
// it reboots into a boot with another kernel (the log replays to the
// quoted PCRs: the TPM saw that kernel) and fails with reason
// boot-policy naming the kernel's event; the timeline and the EAR say so.
func TestBootPolicyAcrossReboot(t *testing.T) {
	src := testenv.Testdata(t, "tcg-eventlogs/ubuntu-2104-no-secure-boot.bin")
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	e256, _ := l.UnverifiedEvents(digest.SHA256)
	e1, _ := l.UnverifiedEvents(digest.SHA1)
	kernel := -1
	for i, e := range e256 {
		if e.PCR == 9 && strings.Contains(eventlog.Describe(e), "vmlinuz") {
			kernel = i
		}
	}
	if kernel < 0 {
		t.Fatal("no kernel event in pcr 9")
	}
	// The same machine booting another kernel: that event's digests
	// changed in both banks.
	changed := bytes.Clone(raw)
	for _, d := range [][]byte{e256[kernel].Digest, e1[kernel].Digest} {
		i := bytes.Index(changed, d)
		if i < 0 || bytes.Contains(changed[i+1:], d) {
			t.Fatalf("digest %x not found once in the log", d)
		}
		changed[i] ^= 0xa5
	}

	dir := t.TempDir()
	logPath := filepath.Join(dir, "binary_bios_measurements")
	writeFile(t, logPath, string(raw))
	sw := tpmtest.Start(t, tpmtest.Options{})
	boot(t, sw, logPath)
	a := newTestAgentWithBootLog(t, sw, logPath) // its list starts with a boot_aggregate of the booted PCRs

	pol, err := bootpolicy.Generate("machine", digest.SHA256, e256)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := bootpolicy.Canonical(pol)
	tv := startVerifier(t, "")
	ctx := context.Background()
	// A runtime policy naming a boot policy that does not exist: refused.
	rt := map[string]any{}
	json.Unmarshal(policyFor(), &rt)
	rt["boot_policy"] = "machine"
	rtDoc, _ := json.Marshal(rt)
	if _, err := tv.v.PutPolicy(ctx, "p-m", rtDoc); err != nil {
		t.Fatal(err)
	}
	tv.allow(a)
	if _, err := tv.v.Enroll(ctx, verifier.EnrollRequest{ID: "m", Addr: a.addr(), Policy: "p-m"}); err == nil || !strings.Contains(err.Error(), `boot policy "machine"`) {
		t.Fatalf("Enroll with a missing boot policy: %v", err)
	}
	if _, err := tv.v.PutBootPolicy(ctx, "machine", doc); err != nil {
		t.Fatal(err)
	}
	tv.enroll(a, "m", rtDoc)
	got := tv.wait("m", 20*time.Second, "trusted", state(store.StateTrusted))
	if got.Progress.BootLog != store.BootLogJudged {
		t.Fatalf("boot log %q, want judged", got.Progress.BootLog)
	}
	if v := tv.v.EAR(got, time.Now()).Submods["m"].Vector; v == nil || v.Configuration != ear.ConfigApproved || v.Hardware != ear.HardwareGenuine {
		t.Fatalf("trusted EAR vector %+v", v)
	}

	// Reboot into the other kernel (the agent paused meanwhile: the
	// firmware "boots" the swtpm).
	a.setTamper(func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool { w.WriteHeader(503); return true })
	tpmInit(t, a.sw.CtrlPort)
	writeFile(t, logPath, string(changed))
	boot(t, a.sw, logPath)
	if err := os.Remove(a.list); err != nil {
		t.Fatal(err)
	}
	a.measure()
	a.setTamper(nil)

	got = tv.wait("m", 30*time.Second, "failed for its boot", func(x *store.Agent) bool {
		return x.State == store.StateFailed && x.Kind == store.KindSecurity
	})
	r := reasons(got)
	want := "boot-policy: pcr 9 event " + strconv.Itoa(e256[kernel].Seq) + " (EV_IPL kernel "
	if !strings.HasPrefix(r, want) || !strings.Contains(r, bootpolicy.ReasonDigest) || !strings.Contains(r, "vmlinuz") {
		t.Fatalf("reasons %q, want %q… %s", r, want, bootpolicy.ReasonDigest)
	}
	t.Logf("failed: %s", r)
	v := tv.v.EAR(got, time.Now()).Submods["m"]
	if v.Reason != verifier.ReasonBootPolicy || v.Vector.Configuration != ear.ConfigContraindicated ||
		v.Vector.Executables != ear.ExecUnrecognized || v.Vector.Hardware != ear.HardwareGenuine || v.Status != ear.StatusContraindicated {
		t.Fatalf("failed EAR %+v vector %+v", v, v.Vector)
	}
	// The stored event carries the signed EAR of the failure.
	evs, err := tv.st.AgentEvents(ctx, "m", got.Created, 100)
	if err != nil {
		t.Fatal(err)
	}
	signed := false
	for _, e := range evs {
		var n verifier.Notification
		if json.Unmarshal(e.Body, &n) == nil && n.Type == verifier.EventFailed && n.EAR != "" {
			tok, err := ear.ParseUnverified(n.EAR)
			signed = err == nil && tok.Submods["m"].Reason == verifier.ReasonBootPolicy
		}
	}
	if !signed {
		t.Errorf("no stored failed event with a boot-policy EAR")
	}
	tl, err := tv.v.Timeline(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	var sawReboot, sawFailed bool
	for _, n := range tl {
		sawReboot = sawReboot || n.Type == verifier.EventReboot
		if n.Type == verifier.EventFailed && len(n.Reasons) > 0 && strings.HasPrefix(n.Reasons[0], want) {
			sawFailed = true
		}
	}
	if !sawReboot || !sawFailed {
		t.Fatalf("timeline lacks the reboot (%v) or the boot-policy failure (%v): %+v", sawReboot, sawFailed, tl)
	}
}

// tpmInit resets a swtpm (CMD_INIT on its control channel), as a reboot.
func tpmInit(t *testing.T, ctrlPort int) {
	t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(ctrlPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var req [8]byte
	binary.BigEndian.PutUint32(req[:4], 2) // CMD_INIT
	c.Write(req[:])
	var rsp [4]byte
	if _, err := io.ReadFull(c, rsp[:]); err != nil || binary.BigEndian.Uint32(rsp[:]) != 0 {
		t.Fatalf("CMD_INIT: %x %v", rsp, err)
	}
}
