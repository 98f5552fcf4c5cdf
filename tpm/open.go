// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Default device nodes, in the order [Open] tries them for the empty
// spec: the kernel's resource manager first (many clients may share it),
// the raw device second (one client at a time).
const (
	DeviceRM  = "/dev/tpmrm0"
	DeviceRaw = "/dev/tpm0"
)

// DefaultSpec names the default device explicitly (as the empty spec).
const DefaultSpec = "default"

// SimSpec is the spec of the embedded simulator (package tpm/sim).
const SimSpec = "sim"

// SimBuildTag is the build tag that links the embedded simulator into
// intact's binaries (their --tpm sim). Release builds leave it out.
const SimBuildTag = "intact_sim"

// dialTimeout bounds connecting to a swtpm.
const dialTimeout = 5 * time.Second

// startupTimeout bounds the first command to a swtpm. swtpm serves one
// client at a time: a second one is connected by the kernel but gets no
// answer until the first disconnects, which is reported as ErrBusy.
var startupTimeout = 10 * time.Second

// TPM is an open connection to a TPM. Its methods may be called from
// several goroutines; commands are sent one at a time. Close it when
// done: a device or simulator serves one client at a time.
type TPM struct {
	spec   string
	tr     *retryTransport
	closer io.Closer
}

// Open opens the TPM named by spec:
//
//   - "" or "default" — [DeviceRM] if present, else [DeviceRaw];
//   - an absolute path such as "/dev/tpmrm0" — a TPM character device;
//   - "swtpm:HOST:PORT" — a swtpm (or any TPM) speaking the TPM command
//     protocol over TCP ("swtpm socket --server type=tcp,port=PORT");
//     its control channel, used only when the TPM needs initialising, is
//     expected on PORT+1 as swtpm and tpm2-tools' swtpm TCTI assume.
//
// "sim", the embedded simulator, is refused with [ErrNoSimulator]: this
// package does not link it; an [Opener] with a Simulator opens it.
//
// A TPM that is missing gives an error wrapping [ErrNotPresent]; one
// that is held by another process, [ErrBusy].
func Open(spec string) (*TPM, error) { return Opener{}.Open(spec) }

// Opener opens TPMs by spec, as [Open] does, and "sim" with Simulator.
//
// Simulator is package tpm/sim's Open (go-tpm-tools' simulator: C code
// built with cgo, seeded with a fixed, public seed, so nothing it holds is
// secret). Tests link it, and binaries built with the [SimBuildTag] tag
// set it for their --tpm sim (the quickstart, demonstrations); a release
// build leaves it nil and refuses "sim" with [ErrNoSimulator].
type Opener struct {
	Simulator func() (*TPM, error)
}

// Open opens the TPM named by spec (see [Open]).
func (o Opener) Open(spec string) (*TPM, error) {
	switch {
	case spec == "" || spec == DefaultSpec:
		return openDefault()
	case spec == SimSpec:
		if o.Simulator == nil {
			return nil, &Error{Op: "open " + quoteSpec(spec), Kind: ErrNoSimulator,
				Err: fmt.Errorf("build with -tags %s for tests and demonstrations", SimBuildTag)}
		}
		return o.Simulator()
	case strings.HasPrefix(spec, "/"):
		return openDevice(spec)
	case strings.HasPrefix(spec, "swtpm:"):
		return openSwtpm(spec)
	}
	return nil, &Error{Op: "open " + quoteSpec(spec), Kind: ErrBadSpec,
		Err: errors.New(`want default, a device path (/dev/tpmrm0), swtpm:HOST:PORT or sim`)}
}

func quoteSpec(spec string) string { return fmt.Sprintf("%q", spec) }

// NewStream returns a TPM that speaks the TPM command protocol over the
// byte stream rw and is already started, such as the in-process simulator
// of package tpm/sim. Spec is what [TPM.Spec] reports. Closing the TPM
// closes rw.
func NewStream(spec string, rw io.ReadWriteCloser) *TPM {
	return newTPM(spec, newStreamTransport(rw))
}

func newTPM(spec string, tc transport.TPMCloser) *TPM {
	return &TPM{
		spec:   spec,
		tr:     &retryTransport{inner: tc, tries: 5, delay: 20 * time.Millisecond},
		closer: tc,
	}
}

// Spec returns the spec the TPM was opened with (for the default, the
// device that was found).
func (t *TPM) Spec() string { return t.spec }

// Transport returns the connection for commands this package does not
// wrap (go-tpm's tpm2 API). Commands are serialised with this package's.
func (t *TPM) Transport() transport.TPM { return t.tr }

// Close closes the connection.
func (t *TPM) Close() error { return t.closer.Close() }

func openDefault() (*TPM, error) {
	t, err := openDevice(DeviceRM)
	if err == nil || !errors.Is(err, ErrNotPresent) {
		return t, err
	}
	t, err2 := openDevice(DeviceRaw)
	if err2 == nil || !errors.Is(err2, ErrNotPresent) {
		return t, err2
	}
	return nil, &Error{Op: "open", Kind: ErrNotPresent,
		Err: fmt.Errorf("neither %s nor %s exists (use --tpm swtpm:HOST:PORT or --tpm sim for a software TPM)", DeviceRM, DeviceRaw)}
}

func openDevice(path string) (*TPM, error) {
	op := "open " + path
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &Error{Op: op, Kind: ErrNotPresent, Err: errors.New("no such device")}
		}
		return nil, &Error{Op: op, Err: err}
	}
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return nil, &Error{Op: op, Kind: ErrBadSpec, Err: errors.New("not a character device")}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, syscall.EBUSY) {
			return nil, &Error{Op: op, Kind: ErrBusy, Err: errors.New("in use by another process (try " + DeviceRM + ")")}
		}
		return nil, &Error{Op: op, Err: err}
	}
	// The kernel started the TPM.
	return newTPM(path, &deviceTransport{f: f}), nil
}

func openSwtpm(spec string) (*TPM, error) {
	op := "open " + spec
	addr := strings.TrimPrefix(spec, "swtpm:")
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return nil, &Error{Op: op, Kind: ErrBadSpec, Err: errors.New("want swtpm:HOST:PORT")}
	}
	conn, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, &Error{Op: op, Kind: ErrNotPresent, Err: errors.New("nothing listening (is swtpm running?)")}
		}
		return nil, &Error{Op: op, Err: err}
	}
	st := newStreamTransport(conn)
	t := newTPM(spec, st)
	st.setTimeout(startupTimeout)
	err = t.startup(addr)
	st.setTimeout(commandTimeout)
	if err != nil {
		t.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, &Error{Op: op, Kind: ErrBusy,
				Err: fmt.Errorf("no answer in %v (swtpm serves one client at a time: is another one connected?)", startupTimeout)}
		}
		return nil, &Error{Op: op, Err: err}
	}
	return t, nil
}

// startup sends TPM2_Startup(CLEAR) unless the TPM was already started.
// A swtpm started without --flags not-need-init first needs CMD_INIT on
// its control channel; startup sends it when the TPM answers
// TPM_RC_FAILURE and tries again.
func (t *TPM) startup(addr string) error {
	err := t.sendStartup()
	if errors.Is(err, tpm2.TPMRCFailure) {
		if ierr := swtpmInit(addr); ierr != nil {
			return fmt.Errorf("tpm not initialised, and control channel: %w", ierr)
		}
		err = t.sendStartup()
	}
	return err
}

func (t *TPM) sendStartup() error {
	_, err := tpm2.Startup{StartupType: tpm2.TPMSUClear}.Execute(t.tr)
	if errors.Is(err, tpm2.TPMRCInitialize) {
		return nil // already started
	}
	return err
}
