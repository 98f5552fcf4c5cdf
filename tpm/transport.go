// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

const (
	headerSize = 10 // tag (2) | size (4) | command or response code (4)
	// maxResponseSize bounds the size a response header may claim. TPMs
	// answer in at most MAX_RESPONSE_SIZE (4096 on nearly all of them);
	// the bound only stops a broken peer from making us allocate much.
	maxResponseSize = 1 << 16
	// commandTimeout bounds one command on a network transport. RSA key
	// generation on a slow TPM takes tens of seconds.
	commandTimeout = 3 * time.Minute
)

// streamTransport speaks the TPM command protocol over a byte stream: it
// writes a command and reads exactly one response, whose length is in its
// 10-byte header. A single Read may return any part of a response, so
// both parts are read with io.ReadFull.
type streamTransport struct {
	mu      sync.Mutex
	rw      io.ReadWriter
	closer  io.Closer
	conn    net.Conn      // for deadlines; nil for non-network streams
	timeout time.Duration // per command, on a network stream
}

func newStreamTransport(rwc io.ReadWriteCloser) *streamTransport {
	s := &streamTransport{rw: rwc, closer: rwc, timeout: commandTimeout}
	if c, ok := rwc.(net.Conn); ok {
		s.conn = c
	}
	return s
}

func (s *streamTransport) setTimeout(d time.Duration) {
	s.mu.Lock()
	s.timeout = d
	s.mu.Unlock()
}

func (s *streamTransport) Send(cmd []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		if err := s.conn.SetDeadline(time.Now().Add(s.timeout)); err != nil {
			return nil, err
		}
		defer s.conn.SetDeadline(time.Time{})
	}
	if _, err := s.rw.Write(cmd); err != nil {
		return nil, fmt.Errorf("sending command: %w", err)
	}
	return readResponse(s.rw)
}

// readResponse reads one framed response from r.
func readResponse(r io.Reader) ([]byte, error) {
	hdr := make([]byte, headerSize)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("%w: reading response header: %w", ErrProtocol, err)
	}
	size := binary.BigEndian.Uint32(hdr[2:6])
	if size < headerSize || size > maxResponseSize {
		return nil, fmt.Errorf("%w: response header claims %d bytes", ErrProtocol, size)
	}
	rsp := make([]byte, size)
	copy(rsp, hdr)
	if _, err := io.ReadFull(r, rsp[headerSize:]); err != nil {
		return nil, fmt.Errorf("%w: reading %d-byte response: %w", ErrProtocol, size, err)
	}
	return rsp, nil
}

func (s *streamTransport) Close() error { return s.closer.Close() }

// deviceTransport talks to a TPM character device. The kernel hands out a
// whole response to one read(2) that is large enough; kernels before 5.0
// drop the rest of a response read in parts. So it reads once into a
// buffer of the maximum size, and only if that returned less than the
// header announces (a newer kernel may) reads the remainder.
type deviceTransport struct {
	mu sync.Mutex
	f  io.ReadWriteCloser
}

func (d *deviceTransport) Send(cmd []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.f.Write(cmd); err != nil {
		return nil, fmt.Errorf("sending command: %w", err)
	}
	buf := make([]byte, maxResponseSize)
	n, err := d.f.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("%w: reading response: %v", ErrProtocol, err)
	}
	if n < headerSize {
		return readResponse(io.MultiReader(bytes.NewReader(buf[:n]), d.f))
	}
	size := binary.BigEndian.Uint32(buf[2:6])
	if size < headerSize || size > maxResponseSize || uint32(n) > size {
		return nil, fmt.Errorf("%w: %d-byte read of a response whose header claims %d bytes", ErrProtocol, n, size)
	}
	if _, err := io.ReadFull(d.f, buf[n:size]); err != nil {
		return nil, fmt.Errorf("%w: reading %d-byte response: %w", ErrProtocol, size, err)
	}
	return buf[:size], nil
}

func (d *deviceTransport) Close() error { return d.f.Close() }

// retryTransport resends a command the TPM answered with TPM_RC_RETRY,
// TPM_RC_YIELDED or TPM_RC_TESTING (warnings: the command was not
// executed), with a short backoff. After the last try the warning is
// passed on and becomes [ErrBusy].
type retryTransport struct {
	mu    sync.Mutex // one command at a time; transports are not reentrant
	inner transport.TPM
	tries int
	delay time.Duration
}

func (r *retryTransport) Send(cmd []byte) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delay := r.delay
	for i := 1; ; i++ {
		rsp, err := r.inner.Send(cmd)
		if err != nil || i >= r.tries || !isBusyResponse(rsp) {
			return rsp, err
		}
		time.Sleep(delay)
		delay *= 2
	}
}

func isBusyResponse(rsp []byte) bool {
	if len(rsp) < headerSize {
		return false
	}
	switch tpm2.TPMRC(binary.BigEndian.Uint32(rsp[6:10])) {
	case tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting:
		return true
	}
	return false
}
