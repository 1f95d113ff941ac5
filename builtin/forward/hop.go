package forward

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/net/proxy"

	"github.com/socks5d/socks5d/middleware"
)

// The hops of a chain: over a connection c that reaches upstream u, ask u
// to connect to target (host:port, a name passed as it is). Both return
// the connection to use from then on: c itself, so that the relay can
// still splice, unless bytes the upstream sent after its answer had to be
// read ahead (HTTP), which the returned conn serves first.

// errHandshake is a hop that ended without a reply code to report.
var errHandshake = errors.New("handshake failed")

// socksHop asks the SOCKS5 upstream u (golang.org/x/net/proxy) to connect
// to target over c. A refusal is an *UpstreamError with the reply code
// the upstream sent.
func socksHop(ctx context.Context, c net.Conn, u *upstream, target string) (net.Conn, error) {
	var auth *proxy.Auth
	if u.user != "" {
		auth = &proxy.Auth{User: u.user, Password: u.pass}
	}
	rec := &recordingConn{Conn: c}
	d, err := proxy.SOCKS5("tcp", u.host, auth, connDialer{rec})
	if err != nil {
		return nil, &UpstreamError{Upstream: u.shown, Err: err}
	}
	if _, err := d.(proxy.ContextDialer).DialContext(ctx, "tcp", target); err != nil {
		return nil, &UpstreamError{Upstream: u.shown, Reply: rec.reply(auth != nil), Err: err}
	}
	return c, nil
}

// connDialer is the "forward" dialer x/net/proxy is given: the connection
// to the upstream is already open.
type connDialer struct{ c net.Conn }

func (d connDialer) Dial(_, _ string) (net.Conn, error) { return d.c, nil }
func (d connDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	return d.c, nil
}

// recordingConn keeps the bytes the upstream sent during the handshake,
// so that the reply code is read from them rather than from an error's
// text. The handshake is a few bytes; the recording is capped.
type recordingConn struct {
	net.Conn
	got []byte
}

func (r *recordingConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if len(r.got) < 64 {
		r.got = append(r.got, p[:min(n, 64-len(r.got))]...)
	}
	return n, err
}

// reply returns the REP code of the upstream's reply to the request (RFC
// 1928 §6), 0 when it sent none: the method choice (2 octets), the RFC
// 1929 status (2 octets) when the upstream chose username/password, then
// VER REP.
func (r *recordingConn) reply(withAuth bool) uint8 {
	b := r.got
	if len(b) < 2 {
		return 0
	}
	at := 2
	if withAuth && b[1] == 0x02 {
		at = 4
	}
	if len(b) < at+2 || b[at] != 5 {
		return 0
	}
	return b[at+1]
}

// httpHop asks the HTTP upstream u to CONNECT to target over c, with
// net/http's request writer and response reader. Any status but 2xx is
// an *UpstreamError carrying it.
func httpHop(ctx context.Context, c net.Conn, u *upstream, target string) (net.Conn, error) {
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: target},
		Host:   target,
		Header: http.Header{},
	}
	if u.user != "" {
		cred := base64.StdEncoding.EncodeToString([]byte(u.user + ":" + u.pass))
		req.Header.Set("Proxy-Authorization", "Basic "+cred)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
		defer func() { _ = c.SetDeadline(time.Time{}) }()
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := req.Write(c); err != nil {
		return nil, &UpstreamError{Upstream: u.shown, Err: err}
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, &UpstreamError{Upstream: u.shown, Err: err}
	}
	_ = resp.Body.Close() // a 2xx answer to CONNECT has no body
	if resp.StatusCode/100 != 2 {
		return nil, &UpstreamError{Upstream: u.shown, Status: resp.StatusCode, Err: fmt.Errorf("%w: CONNECT refused", errHandshake)}
	}
	if n := br.Buffered(); n > 0 {
		ahead, _ := br.Peek(n)
		return &prefixConn{Conn: c, ahead: append([]byte(nil), ahead...)}, nil
	}
	return c, nil
}

// prefixConn serves bytes read ahead before reading from the conn.
type prefixConn struct {
	net.Conn
	ahead []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.ahead) > 0 {
		n := copy(b, p.ahead)
		p.ahead = p.ahead[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// CloseWrite half-closes the conn when it can, so the relay's half-close
// still works through the wrapper.
func (p *prefixConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return p.Conn.Close()
}

// replyOf maps a failed dial through an egress to the reply the client
// gets: the destination's verdict that the last upstream reported
// (network or host unreachable, connection refused) passes through; any
// other failure of an upstream is a general failure (0x01).
func replyOf(err error, last bool) middleware.Reply {
	var ue *UpstreamError
	if errors.As(err, &ue) && last {
		switch r := middleware.Reply(ue.Reply); r {
		case middleware.ReplyNetworkUnreachable, middleware.ReplyHostUnreachable, middleware.ReplyConnectionRefused:
			return r
		}
	}
	return middleware.ReplyGeneralFailure
}
