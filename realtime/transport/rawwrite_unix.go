//go:build unix

package transport

import (
	"io"
	"syscall"
)

// rawWriteSupported: rawWrite.do can write to a socket's descriptor.
const rawWriteSupported = true

// do is called by RawConn.Write with the socket's descriptor; returning
// true means "done, do not wait for the socket to become writable".
func (w *rawWrite) do(fd uintptr) bool {
	for w.n < len(w.b) {
		m, err := syscall.Write(int(fd), w.b[w.n:])
		if m > 0 {
			w.n += m
		}
		switch err {
		case nil:
			if m <= 0 {
				w.err = io.ErrShortWrite
				return true
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			return true
		default:
			w.err = err
			return true
		}
	}
	return true
}
