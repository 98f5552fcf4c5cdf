// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// response builds a TPM response with the given code and body.
func response(rc tpm2.TPMRC, body []byte) []byte {
	r := make([]byte, headerSize, headerSize+len(body))
	binary.BigEndian.PutUint16(r[0:2], uint16(tpm2.TPMSTNoSessions))
	binary.BigEndian.PutUint32(r[2:6], uint32(headerSize+len(body)))
	binary.BigEndian.PutUint32(r[6:10], uint32(rc))
	return append(r, body...)
}

// serve runs a fake TPM on a loopback listener: for each command it reads
// (any bytes), it writes the next reply in chunks of chunk bytes with a
// pause between them, so that the client's reads return partial responses.
func serve(t *testing.T, chunk int, replies ...[]byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for _, r := range replies {
			if _, err := c.Read(buf); err != nil {
				return
			}
			for i := 0; len(r) > 0; i++ {
				n := min(chunk, len(r))
				if _, err := c.Write(r[:n]); err != nil {
					return
				}
				r = r[n:]
				if i < 16 || i%64 == 0 { // pauses: the reader sees pieces
					time.Sleep(time.Millisecond) // time under test: pauses split the reply across reads
				}
			}
		}
	}()
	return l.Addr().String()
}

func dial(t *testing.T, addr string) *streamTransport {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := newStreamTransport(c)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFramingFragmented(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 100) // 1600 bytes
	r1 := response(tpm2.TPMRCSuccess, body)
	r2 := response(tpm2.TPMRCSuccess, []byte("second"))
	for _, chunk := range []int{1, 3, 7, 10, 11, 512} {
		s := dial(t, serve(t, chunk, r1, r2))
		got, err := s.Send([]byte("cmd1"))
		if err != nil || !bytes.Equal(got, r1) {
			t.Fatalf("chunk %d: response 1 = %d bytes, %v; want %d bytes", chunk, len(got), err, len(r1))
		}
		// The second response must start where the first ended.
		got, err = s.Send([]byte("cmd2"))
		if err != nil || !bytes.Equal(got, r2) {
			t.Fatalf("chunk %d: response 2 = %q, %v; want %q", chunk, got, err, r2)
		}
	}
}

func TestFramingBroken(t *testing.T) {
	huge := response(tpm2.TPMRCSuccess, nil)
	binary.BigEndian.PutUint32(huge[2:6], maxResponseSize+1)
	tiny := response(tpm2.TPMRCSuccess, nil)
	binary.BigEndian.PutUint32(tiny[2:6], 9)
	full := response(tpm2.TPMRCSuccess, make([]byte, 100))
	for name, r := range map[string][]byte{
		"header cut":      full[:6],
		"body cut":        full[:50],
		"size too large":  huge,
		"size below head": tiny,
	} {
		s := dial(t, serve(t, 4, r))
		if _, err := s.Send([]byte("cmd")); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want ErrProtocol", name, err)
		}
	}
}

// fakeTPM answers every command with the next canned response.
type fakeTPM struct {
	replies [][]byte
	sent    int
}

func (f *fakeTPM) Send([]byte) ([]byte, error) {
	f.sent++
	if len(f.replies) == 0 {
		return nil, io.EOF
	}
	r := f.replies[0]
	if len(f.replies) > 1 {
		f.replies = f.replies[1:]
	}
	return r, nil
}

func (f *fakeTPM) Close() error { return nil }

func TestBusyRetriedThenReported(t *testing.T) {
	for _, rc := range []tpm2.TPMRC{tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting} {
		f := &fakeTPM{replies: [][]byte{response(rc, nil)}}
		tp := newTPM("fake", f)
		tp.tr.delay = time.Millisecond
		_, err := tp.Banks()
		if !errors.Is(err, ErrBusy) || !errors.Is(err, rc) {
			t.Errorf("rc %v: err = %v, want ErrBusy wrapping the rc", rc, err)
		}
		if f.sent != tp.tr.tries {
			t.Errorf("rc %v: sent %d times, want %d", rc, f.sent, tp.tr.tries)
		}
	}
	// A warning followed by success succeeds.
	f := &fakeTPM{replies: [][]byte{response(tpm2.TPMRCRetry, nil), response(tpm2.TPMRCSuccess, make([]byte, 9))}}
	tp := newTPM("fake", f)
	tp.tr.delay = time.Millisecond
	if _, err := tp.Banks(); errors.Is(err, ErrBusy) {
		t.Errorf("retry then success: %v", err)
	}
	if f.sent != 2 {
		t.Errorf("sent %d times, want 2", f.sent)
	}
}

func TestLockoutReported(t *testing.T) {
	f := &fakeTPM{replies: [][]byte{response(tpm2.TPMRCLockout, nil)}}
	tp := newTPM("fake", f)
	_, err := tp.ReadPCRs(crypto.SHA256, []int{0})
	if !errors.Is(err, ErrLockout) {
		t.Fatalf("err = %v, want ErrLockout", err)
	}
	if f.sent != 1 {
		t.Errorf("lockout retried: sent %d", f.sent)
	}
}

// fakeDevice behaves like a TPM character device on an old kernel: a
// read gets the whole pending response if the buffer is large enough, and
// a shorter read loses the rest of it.
type fakeDevice struct {
	pending []byte
	split   int // if > 0, hand out the response in reads of at most split bytes (a newer kernel)
}

func (d *fakeDevice) Write(p []byte) (int, error) {
	d.pending = response(tpm2.TPMRCSuccess, bytes.Repeat([]byte{0xab}, 700))
	return len(p), nil
}

func (d *fakeDevice) Read(p []byte) (int, error) {
	if len(d.pending) == 0 {
		return 0, io.EOF
	}
	n := len(d.pending)
	if d.split > 0 {
		n = min(n, d.split)
	}
	n = copy(p, d.pending[:n])
	if d.split > 0 {
		d.pending = d.pending[n:]
	} else {
		d.pending = nil // the rest is lost
	}
	return n, nil
}

func (d *fakeDevice) Close() error { return nil }

func TestDeviceTransport(t *testing.T) {
	want := response(tpm2.TPMRCSuccess, bytes.Repeat([]byte{0xab}, 700))
	for _, split := range []int{0, 5, 100} {
		d := &deviceTransport{f: &fakeDevice{split: split}}
		for i := 0; i < 2; i++ {
			got, err := d.Send([]byte("cmd"))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("split %d: %d bytes, %v", split, len(got), err)
			}
		}
	}
	// The stream reader on an old-kernel device would lose the response.
	s := &streamTransport{rw: &fakeDevice{}, closer: io.NopCloser(nil)}
	if _, err := s.Send([]byte("cmd")); err == nil {
		t.Error("stream framing over a whole-response device unexpectedly worked; the test device is wrong")
	}
}
