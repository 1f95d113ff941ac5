package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
)

// errHTTP marks an HTTP CONNECT failure seen by the bench's client.
var errHTTP = errors.New("http connect")

// maxHead bounds the CONNECT response's header.
const maxHead = 4 << 10

// httpConnect asks an HTTP proxy for a tunnel to target (CONNECT, with
// Proxy-Authorization: Basic when user is set) and reads the response's
// header, and nothing past it: the tunnel's first bytes stay in the
// socket for the caller.
func httpConnect(c *net.TCPConn, user, pass string, target netip.AddrPort) error {
	req := "CONNECT " + target.String() + " HTTP/1.1\r\nHost: " + target.String() + "\r\n"
	if user != "" {
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return fmt.Errorf("%w: request: %w", errHTTP, err)
	}
	head, err := readHead(c)
	if err != nil {
		return fmt.Errorf("%w: response: %w", errHTTP, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil)
	if err != nil {
		return fmt.Errorf("%w: response: %w", errHTTP, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s", errHTTP, resp.Status)
	}
	return nil
}

// readHead reads up to and including the blank line that ends a
// response's header, peeking (MSG_PEEK) so as to consume no byte past it.
func readHead(c *net.TCPConn) ([]byte, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var head []byte
	var buf [maxHead]byte
	for len(head) < maxHead {
		var n int
		var perr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, perr = syscall.Recvfrom(int(fd), buf[:maxHead-len(head)], syscall.MSG_PEEK)
			return perr != syscall.EAGAIN && perr != syscall.EINTR
		})
		switch {
		case err != nil:
			return nil, err
		case perr != nil:
			return nil, perr
		case n == 0:
			return nil, io.ErrUnexpectedEOF
		}
		// The end may straddle what was read and what is peeked.
		from := max(len(head)-3, 0)
		joined := append(head[from:len(head):len(head)], buf[:n]...)
		take := n
		if i := bytes.Index(joined, []byte("\r\n\r\n")); i >= 0 {
			take = i + 4 - (len(head) - from)
		}
		m, err := io.ReadFull(c, buf[:take])
		head = append(head, buf[:m]...)
		if err != nil {
			return nil, err
		}
		if take < n || bytes.HasSuffix(head, []byte("\r\n\r\n")) {
			return head, nil
		}
	}
	return nil, fmt.Errorf("header longer than %d bytes", maxHead)
}
