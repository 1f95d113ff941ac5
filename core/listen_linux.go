package core

import (
	"net"
	"syscall"
	"time"
)

// deferAcceptSeconds is TCP_DEFER_ACCEPT on the SOCKS listener: the
// kernel hands a connection to accept once the client's first bytes (the
// greeting) have arrived, so the first read of the handshake finds them
// instead of answering EAGAIN and parking. A client that stays silent
// waits in the kernel's queue (no descriptor, no goroutine) for about this
// long, then is accepted anyway and gets the whole handshake timeout.
const deferAcceptSeconds = 1

// listenConfig returns the SOCKS listener's configuration. On Linux an
// accepted socket inherits its listener's keep-alive options, so they are
// set once on the listening socket instead of once per connection (one
// setsockopt fewer per accept, more with own timing); TCP_DEFER_ACCEPT is
// set there too.
func listenConfig(ka net.KeepAliveConfig) *net.ListenConfig {
	return &net.ListenConfig{
		KeepAlive: -1, // inherited from the listening socket, below
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = setListenerOptions(int(fd), ka)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}

// setListenerOptions sets keep-alive as net.ListenConfig would on each
// accepted socket (zero durations are the net package's 15 s, negative
// ones the system's), and TCP_DEFER_ACCEPT.
func setListenerOptions(fd int, ka net.KeepAliveConfig) error {
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, deferAcceptSeconds); err != nil {
		return err
	}
	if !ka.Enable {
		return nil
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1); err != nil {
		return err
	}
	for _, o := range []struct {
		opt int
		d   time.Duration
	}{
		{syscall.TCP_KEEPIDLE, ka.Idle},
		{syscall.TCP_KEEPINTVL, ka.Interval},
	} {
		if o.d < 0 {
			continue
		}
		if o.d == 0 {
			o.d = 15 * time.Second
		}
		secs := int((o.d + time.Second - 1) / time.Second)
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, o.opt, secs); err != nil {
			return err
		}
	}
	if ka.Count > 0 {
		return syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, ka.Count)
	}
	return nil
}
