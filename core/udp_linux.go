package core

import (
	"net"
	"syscall"
	"unsafe"
)

// udpWaiter waits until a UDP socket has a datagram without reading it,
// so that an idle association holds no buffer.
type udpWaiter struct {
	rc    syscall.RawConn
	check func(fd uintptr) bool // w.checkFD, bound once: no allocation per wait
	peek  [1]byte
}

func (w *udpWaiter) init(c *net.UDPConn) {
	w.check = w.checkFD
	if rc, err := c.SyscallConn(); err == nil {
		w.rc = rc
	}
}

// wait blocks until a datagram (or an error) is pending, the read deadline
// passes or the socket is closed.
func (w *udpWaiter) wait() error {
	if w.rc == nil {
		return nil
	}
	return w.rc.Read(w.check)
}

// checkFD is the RawConn.Read callback: false (wait) while nothing is
// queued. A one-byte peek tells without consuming the datagram.
func (w *udpWaiter) checkFD(fd uintptr) bool {
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&w.peek[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if e != syscall.EINTR {
			return e != syscall.EAGAIN
		}
	}
}
