// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"os"
	"strings"

	"github.com/intactsec/intact/internal/readfile"
)

// fileErr is an error about a file the command was given: it names what
// the file is for and its path ("certificate /etc/keys/c.der: no such file
// or directory"), whatever layer the cause came from.
type fileErr struct {
	what, path string
	err        error
}

func (e *fileErr) Error() string {
	msg := strings.TrimPrefix(e.err.Error(), e.path+": ")
	var pe *os.PathError
	if errors.As(e.err, &pe) && pe.Path == e.path {
		msg = pe.Err.Error()
	}
	return e.what + " " + e.path + ": " + msg
}

func (e *fileErr) Unwrap() error { return e.err }

// fileError names path (given for what) in err; nil stays nil.
func fileError(what, path string, err error) error {
	if err == nil {
		return nil
	}
	var fe *fileErr
	if errors.As(err, &fe) && fe.path == path {
		return err
	}
	return &fileErr{what: what, path: path, err: err}
}

// readNamed reads a whole file of at most max bytes (an endless or huge
// file fails at once); errors name it as fileError does.
func readNamed(what, path string, max int64) ([]byte, error) {
	b, err := readfile.Read(path, max)
	return b, fileError(what, path, err)
}
