// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// swtpm control channel commands (swtpm's tpm_ioctl.h).
const ctrlCmdInit = 2

// swtpmInit sends CMD_INIT to the swtpm control channel, which listens
// on the port after the TPM's (the convention of swtpm's TCTI).
func swtpmInit(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	ctrl := net.JoinHostPort(host, strconv.Itoa(p+1))
	conn, err := net.DialTimeout("tcp", ctrl, dialTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:4], ctrlCmdInit)
	binary.BigEndian.PutUint32(req[4:8], 0) // init flags
	if _, err := conn.Write(req[:]); err != nil {
		return err
	}
	var rsp [4]byte
	if _, err := io.ReadFull(conn, rsp[:]); err != nil {
		return fmt.Errorf("reading %s: %w", ctrl, err)
	}
	if rc := binary.BigEndian.Uint32(rsp[:]); rc != 0 {
		return fmt.Errorf("CMD_INIT on %s: result 0x%x", ctrl, rc)
	}
	return nil
}
