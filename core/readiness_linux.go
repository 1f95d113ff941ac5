package core

import (
	"syscall"
	"unsafe"
)

// checkFD is the RawConn.Read callback: false (wait) while the socket has
// nothing to read; otherwise it records the bytes waiting (FIONREAD), or 0
// with the error for EOF or a pending error.
func (r *readiness) checkFD(fd uintptr) bool {
	var n int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); e == 0 && n > 0 {
		r.avail = int(n)
		return true
	}
	// Nothing queued: not ready yet, at EOF, or failed. A one-byte peek tells.
	var m uintptr
	var e syscall.Errno
	for {
		m, _, e = syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.peek[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if e != syscall.EINTR {
			break
		}
	}
	switch {
	case e == syscall.EAGAIN:
		return false
	case e != 0:
		r.err = e
	case m > 0:
		r.avail = int(m) // data arrived between the two calls
	}
	return true
}

// readFD is the RawConn.Read callback of read: it takes a buffer and reads
// into it; on EAGAIN it gives the buffer back and asks to wait.
func (r *readiness) readFD(fd uintptr) bool {
	bp := r.pool.Get().(*[]byte)
	for {
		n, err := syscall.Read(int(fd), *bp)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			r.pool.Put(bp)
			return false
		case err != nil:
			r.pool.Put(bp)
			r.err = err
			return true
		}
		if n == 0 {
			r.pool.Put(bp) // EOF
		} else {
			r.buf = bp
		}
		r.avail = n
		return true
	}
}
