//go:build !unix

package transport

import "errors"

// rawWriteSupported: rawWrite.do can write to a socket's descriptor. Not
// here: every write goes through net.Conn, on a goroutine of its session.
const rawWriteSupported = false

func (w *rawWrite) do(uintptr) bool {
	w.err = errors.ErrUnsupported
	return true
}
