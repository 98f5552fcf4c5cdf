// SPDX-License-Identifier: Apache-2.0

package tpm_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intactsec/intact/internal/tpmtest"
	"github.com/intactsec/intact/tpm"
	"github.com/intactsec/intact/tpm/sim"
)

func TestOpenErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().String()
	l.Close()
	regular := filepath.Join(t.TempDir(), "file")
	os.WriteFile(regular, nil, 0o600)

	for spec, want := range map[string]error{
		"/dev/intact-no-such-tpm": tpm.ErrNotPresent,
		"swtpm:" + closedPort:     tpm.ErrNotPresent,
		"swtpm:localhost":         tpm.ErrBadSpec,
		"swtpm::2321":             tpm.ErrBadSpec,
		"tpmrm0":                  tpm.ErrBadSpec,
		"simulator":               tpm.ErrBadSpec,
		regular:                   tpm.ErrBadSpec,
	} {
		tp, err := tpm.Open(spec)
		if err == nil {
			tp.Close()
		}
		if !errors.Is(err, want) {
			t.Errorf("Open(%q): err = %v, want %v", spec, err, want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "tpm: open ") {
			t.Errorf("Open(%q): message %q does not say what was opened", spec, err)
		}
	}
}

// TestOpenSimNeedsASimulator: Open, which release builds use, refuses
// "sim" with ErrNoSimulator and names the build tag; an Opener with
// package sim's Open opens it, and opens every other spec as Open does.
func TestOpenSimNeedsASimulator(t *testing.T) {
	for name, open := range map[string]func(string) (*tpm.TPM, error){"tpm.Open": tpm.Open, "Opener{}.Open": tpm.Opener{}.Open} {
		tp, err := open(tpm.SimSpec)
		if err == nil {
			tp.Close()
			t.Fatalf("%s(sim) without a simulator succeeded", name)
		}
		if !errors.Is(err, tpm.ErrNoSimulator) || !strings.Contains(err.Error(), "-tags "+tpm.SimBuildTag) {
			t.Errorf("%s(sim): %v, want ErrNoSimulator naming -tags %s", name, err, tpm.SimBuildTag)
		}
	}
	tp, err := sim.Opener().Open(tpm.SimSpec)
	if err != nil {
		t.Fatal(err)
	}
	if tp.Spec() != tpm.SimSpec {
		t.Errorf("Spec() = %q", tp.Spec())
	}
	if _, err := tp.Banks(); err != nil {
		t.Error(err)
	}
	tp.Close()
	if _, err := sim.Opener().Open("/dev/intact-no-such-tpm"); !errors.Is(err, tpm.ErrNotPresent) {
		t.Errorf("Opener.Open of a missing device: %v, want ErrNotPresent", err)
	}
}

func TestOpenDefaultWithoutDevice(t *testing.T) {
	for _, d := range []string{tpm.DeviceRM, tpm.DeviceRaw} {
		if _, err := os.Stat(d); err == nil {
			t.Skipf("%s exists on this machine", d)
		}
	}
	_, err := tpm.Open("")
	if !errors.Is(err, tpm.ErrNotPresent) {
		t.Fatalf("Open(\"\"): err = %v, want ErrNotPresent", err)
	}
	if !strings.Contains(err.Error(), tpm.DeviceRM) || !strings.Contains(err.Error(), tpm.DeviceRaw) {
		t.Errorf("message %q does not name both devices", err)
	}
}

// TestOpenSwtpmNeedsInit: a swtpm started without not-need-init and
// startup-clear needs CMD_INIT on the control channel and TPM2_Startup;
// Open sends both.
func TestOpenSwtpmNeedsInit(t *testing.T) {
	sw := tpmtest.Start(t, tpmtest.Options{NeedInit: true})
	tp := openSpec(t, sw.Spec())
	defer tp.Close()
	if _, err := tp.Banks(); err != nil {
		t.Fatal(err)
	}
	// A second client finds the TPM started.
	tp.Close()
	tp2 := openSpec(t, sw.Spec())
	defer tp2.Close()
	if _, err := tp2.Banks(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenSwtpmBusy: swtpm serves one client at a time; a second Open
// while the first is connected is reported as busy, not a hang.
func TestOpenSwtpmBusy(t *testing.T) {
	defer tpm.SetStartupTimeout(500 * time.Millisecond)()
	sw := tpmtest.Start(t, tpmtest.Options{})
	first := openSpec(t, sw.Spec())
	defer first.Close()
	_, err := tpm.Open(sw.Spec())
	if !errors.Is(err, tpm.ErrBusy) {
		t.Fatalf("second client: err = %v, want ErrBusy", err)
	}
	first.Close()
	second := openSpec(t, sw.Spec())
	second.Close()
}
