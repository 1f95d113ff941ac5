package core

import (
	"io"
	"net"
	"syscall"
)

// peekSocket peeks at the first byte of a socket conn without consuming
// it (MSG_PEEK), waiting for it under the conn's read deadline. ok is
// false when c is not a socket, and the caller reads ahead instead.
func peekSocket(c net.Conn) (b byte, ok bool, err error) {
	sc, isSock := c.(*net.TCPConn)
	if !isSock {
		return 0, false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, true, err
	}
	var buf [1]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK)
			if rerr != syscall.EINTR {
				return rerr != syscall.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, true, err
	case rerr != nil:
		return 0, true, rerr
	case n == 0:
		return 0, true, io.EOF
	}
	return buf[0], true, nil
}
