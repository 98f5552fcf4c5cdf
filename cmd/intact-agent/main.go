// SPDX-License-Identifier: Apache-2.0

// Command intact-agent runs intact's attestation agent on its own, for
// hosts and tests without intactd: it serves the agent API over HTTPS
// from a TPM and a measurement list, and measures files into intact's
// list as intactd does when they run.
//
//	intact-agent serve --tpm SPEC --state DIR --list PATH [--listen ADDR] [--pcr 13] [--bootlog PATH]
//	intact-agent serve --tpm SPEC --state DIR --ima [--listen ADDR]
//	intact-agent measure --tpm SPEC --list PATH [--pcr 13] FILE...
//
// serve writes the address it listens on to DIR/addr and its
// certificate to DIR/tls.crt (what a verifier pins). It answers only the
// verifier in DIR/verifier.crt: placed there by the operator, or pinned
// from the first verifier that enrolls it (mutual TLS).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/agent"
	"github.com/intactsec/intact/internal/atomicfile"
	"github.com/intactsec/intact/internal/version"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/tpm"
)

const (
	imaList    = "/sys/kernel/security/ima/binary_runtime_measurements"
	biosLog    = "/sys/kernel/security/tpm0/binary_bios_measurements"
	imaPCR     = 10
	usageShort = "usage: intact-agent serve --tpm SPEC --state DIR (--list PATH | --ima) | measure --tpm SPEC --list PATH FILE..."
)

// errUsage is a command-line mistake; its text is the synopsis (a type, so
// the synopsis may end as synopses do, in "...").
type errUsage struct{}

func (errUsage) Error() string { return usageShort }

// errNoSimulator is --tpm sim in a build without the simulator (a
// release build).
type errNoSimulator struct{}

func (errNoSimulator) Error() string {
	return fmt.Sprintf("--tpm %s: this build has no TPM simulator (build with -tags %s)", tpm.SimSpec, tpm.SimBuildTag)
}

func main() { os.Exit(report(run(os.Args[1:]), os.Stderr)) }

// report prints err (and a hint where there is one) and returns the exit
// status: 0 without an error, else 2.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "intact-agent: error: %v\n", err)
	if errors.As(err, new(errNoSimulator)) {
		fmt.Fprintf(stderr, "intact-agent: hint: release builds use a TPM device (/dev/tpmrm0) or a swtpm (swtpm:HOST:PORT); for tests and demonstrations: go build -tags %s ./cmd/intact-agent\n", tpm.SimBuildTag)
	}
	return 2
}

// openSpec opens the TPM named by spec with this build's opener.
func openSpec(spec string) (*tpm.TPM, error) {
	t, err := tpmOpener().Open(spec)
	if errors.Is(err, tpm.ErrNoSimulator) {
		return nil, errNoSimulator{}
	}
	return t, err
}

func run(args []string) error {
	if len(args) == 0 {
		return errUsage{}
	}
	switch args[0] {
	case "serve":
		return serve(args[1:])
	case "measure":
		return measure(args[1:])
	case "--version", "-version", "version":
		fmt.Println(version.Line("intact-agent"))
		return nil
	}
	return errUsage{}
}

// openTPM returns the TPM as the agent uses it: a swtpm is opened per
// operation (it serves one connection at a time, shared with measure);
// devices and the simulator stay open.
func openTPM(spec string) (agent.TPM, agent.AKCreator, func(), error) {
	if strings.HasPrefix(spec, "swtpm:") {
		r := agent.Reopening{Spec: spec}
		return r, r, func() {}, nil
	}
	t, err := openSpec(spec)
	if err != nil {
		return nil, nil, nil, err
	}
	return t, t, func() { t.Close() }, nil
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	spec := fs.String("tpm", "", "")
	state := fs.String("state", "", "")
	list := fs.String("list", "", "")
	ima := fs.Bool("ima", false, "")
	pcr := fs.Int("pcr", mlog.DefaultPCR, "")
	listen := fs.String("listen", "127.0.0.1:9443", "")
	bootlog := fs.String("bootlog", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *state == "" || (*list == "") == !*ima || fs.NArg() != 0 {
		return errUsage{}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	t, creator, closeTPM, err := openTPM(*spec)
	if err != nil {
		return err
	}
	defer closeTPM()
	id, err := agent.LoadOrCreateIdentity(*state, creator)
	if err != nil {
		return err
	}
	src := agent.NewFileLog(*list, attest.LogIntact)
	if *ima {
		src, *pcr = agent.NewFileLog(imaList, attest.LogIMA), imaPCR
		if *bootlog == "" {
			*bootlog = biosLog
		}
	}
	pin, err := agent.LoadVerifierPin(filepath.Join(*state, agent.VerifierFile))
	if err != nil {
		return err
	}
	a, err := agent.New(agent.Config{TPM: t, AK: id.AK, Log: src, LogPCR: *pcr, BootLog: *bootlog,
		CertDER: id.Cert.Certificate[0], Logger: log, Verifier: pin})
	if err != nil {
		return err
	}
	ln, err := agent.Listen(*listen, agent.MaxConns)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(*state, "addr"), []byte(ln.Addr().String()+"\n"), 0o644, false); err != nil {
		return err
	}
	srv := agent.NewServer(logRequests(log, a), id.Cert, pin, slog.NewLogLogger(log.Handler(), slog.LevelWarn))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("intact-agent serving", "addr", ln.Addr().String(), "list", src.Source(), "pcr", *pcr, "verifier_pinned", pin.Pinned())
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// logRequests logs each request (the quote offsets show how far the
// verifier has verified).
func logRequests(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Info("request", "method", r.Method, "path", r.URL.Path, "offset", r.URL.Query().Get("offset"))
		h.ServeHTTP(w, r)
	})
}

func measure(args []string) error {
	fs := flag.NewFlagSet("measure", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	spec := fs.String("tpm", "", "")
	list := fs.String("list", "", "")
	pcr := fs.Int("pcr", mlog.DefaultPCR, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *list == "" {
		return errUsage{}
	}
	t, err := openSpec(*spec)
	if err != nil {
		return err
	}
	defer t.Close()
	m, err := agent.OpenMeasurer(t, *list, *pcr)
	if err != nil {
		return err
	}
	defer m.Close()
	for _, f := range fs.Args() {
		if err := m.MeasureFile(f); err != nil {
			return err
		}
	}
	return nil
}
