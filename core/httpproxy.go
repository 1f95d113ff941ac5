package core

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// The HTTP front door: the terminal handler's other protocol. A request
// is read with net/http's parser (http.ReadRequest) and becomes the same
// facts a SOCKS request does — user (Proxy-Authorization: Basic, checked
// by the Session's authenticator like RFC 1929), command CONNECT, target
// host:port — so every stage (auth, filter, limits, ratelimit, accounting,
// connlog, egress) treats it as it treats SOCKS. The reply code maps to an
// HTTP status (httpStatus). CONNECT relays bytes like SOCKS; an
// absolute-form request (GET http://host/path) is forwarded once, through
// an http.Transport whose only connection is the one the Session's Dialer
// opened, with the hop-by-hop fields removed (RFC 9110 §7.6.1), and the
// connection is closed after the response.

// httpRealm is the realm of the 407's Proxy-Authenticate challenge.
const httpRealm = "socks5d"

// httpReadBuf is the size of the buffer requests are read through.
const httpReadBuf = 4 << 10

// httpMaxHeader bounds a request's header; a larger one is malformed.
const httpMaxHeader = 64 << 10

// serveHTTP serves one HTTP proxy request to its end.
func (t *terminal) serveHTTP(ctx context.Context, s *middleware.Session) error {
	client := s.Conn
	if err := client.SetDeadline(t.handshakeDeadline(s)); err != nil {
		return err
	}
	// The header is read under a limit, lifted for the body and the relay
	// (as net/http's server does).
	lr := &io.LimitedReader{R: client, N: httpMaxHeader}
	br := bufio.NewReaderSize(lr, httpReadBuf)
	req, err := http.ReadRequest(br)
	lr.N = math.MaxInt64
	if err != nil {
		var ne net.Error
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (errors.As(err, &ne) && ne.Timeout()) {
			return err // gone, or too slow: the handshake timeout
		}
		return t.badHTTPRequest(s, err)
	}
	target, err := httpTarget(req)
	if err != nil {
		return t.badHTTPRequest(s, err)
	}
	if err := t.httpAuth(ctx, s, req); err != nil {
		return err
	}
	s.Command, s.Target = middleware.CmdConnect, target
	t.rt.sessions.setRequest(s.ID, s.Command, s.Target)
	if err := t.admit(ctx, s); err != nil {
		return err
	}
	dest, err := t.dial(ctx, s)
	if err != nil {
		return err
	}
	defer dest.Close()
	stop := context.AfterFunc(ctx, func() { _ = closeFor(context.Cause(ctx), dest) })
	defer stop()
	if err := client.SetDeadline(time.Time{}); err != nil {
		return err
	}
	if req.Method != http.MethodConnect {
		return t.forwardHTTP(ctx, s, req, dest)
	}
	s.Reply, s.ReplySent = middleware.ReplySucceeded, true
	if _, err := io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return err
	}
	early, _ := br.Peek(br.Buffered()) // bytes the client sent past its request
	return t.relay(s, client, dest, early)
}

// badHTTPRequest answers 400, counts it and returns the error.
func (t *terminal) badHTTPRequest(s *middleware.Session, err error) error {
	t.rt.doors.statsFor(s.Listener).badHTTP.Add(1)
	writeHTTPError(s.Conn, http.StatusBadRequest, nil)
	return fmt.Errorf("%w: %w", ErrHTTPRequest, err)
}

// httpAuth authenticates an HTTP proxy request: Proxy-Authorization:
// Basic with the Session's authenticator, as RFC 1929 would; none, when
// the authenticator accepts anonymous clients. Missing or wrong
// credentials get 407 with a Basic challenge; no authenticator, 403.
func (t *terminal) httpAuth(ctx context.Context, s *middleware.Session, req *http.Request) error {
	if s.Auth == nil { // fail closed, as SOCKS offers no method then
		httpReply(s, middleware.ReplyNotAllowed)
		return ErrNoAcceptableMethod
	}
	user, pass, ok := proxyBasicAuth(req)
	switch {
	case !ok && s.Auth.Accepts(middleware.MethodNoAuth):
		s.AuthState = middleware.AuthNoAuth
		return nil
	case !ok || !s.Auth.Accepts(middleware.MethodPassword):
		t.proxyAuthRequired(s)
		return ErrProxyAuth
	}
	if err := t.login(ctx, s, user, pass); err != nil {
		t.proxyAuthRequired(s)
		return err
	}
	return nil
}

// proxyAuthRequired answers 407 with the Basic challenge and counts it.
func (t *terminal) proxyAuthRequired(s *middleware.Session) {
	t.rt.doors.statsFor(s.Listener).proxyAuthReqd.Add(1)
	writeHTTPError(s.Conn, http.StatusProxyAuthRequired, http.Header{
		"Proxy-Authenticate": {`Basic realm="` + httpRealm + `"`},
	})
}

// proxyBasicAuth reads Proxy-Authorization: Basic with net/http's own
// parser (the one Request.BasicAuth uses for Authorization).
func proxyBasicAuth(req *http.Request) (user, pass string, ok bool) {
	v := req.Header.Get("Proxy-Authorization")
	if v == "" {
		return "", "", false
	}
	r := http.Request{Header: http.Header{"Authorization": {v}}}
	return r.BasicAuth()
}

// httpTarget is the destination of a proxy request: CONNECT's authority
// (host:port), or an absolute-form http:// URL (port 80 by default).
func httpTarget(req *http.Request) (middleware.Target, error) {
	var hostport string
	switch {
	case req.Method == http.MethodConnect:
		hostport = req.Host
		if _, _, err := net.SplitHostPort(hostport); err != nil {
			return middleware.Target{}, fmt.Errorf("CONNECT needs host:port, got %q", req.Host)
		}
	case req.URL.IsAbs() && strings.EqualFold(req.URL.Scheme, "http") && req.URL.Host != "":
		hostport = req.URL.Host
		if req.URL.Port() == "" {
			hostport = net.JoinHostPort(req.URL.Hostname(), "80")
		}
	default:
		return middleware.Target{}, fmt.Errorf("want CONNECT host:port or an absolute http:// URL, got %s %q", req.Method, req.RequestURI)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return middleware.Target{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return middleware.Target{}, fmt.Errorf("bad port %q", port)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return middleware.Target{}, fmt.Errorf("an address with a zone (%q) is not a destination", host)
		}
		return middleware.Target{Addr: ip, Port: uint16(p)}, nil
	}
	if host == "" || len(host) > 255 {
		return middleware.Target{}, fmt.Errorf("bad host %q", host)
	}
	return middleware.Target{Name: host, Port: uint16(p)}, nil
}

// httpStatus maps an RFC 1928 reply code to the HTTP status a proxy
// answers with.
func httpStatus(code middleware.Reply) int {
	switch code {
	case middleware.ReplySucceeded:
		return http.StatusOK
	case middleware.ReplyNotAllowed:
		return http.StatusForbidden
	case middleware.ReplyTTLExpired:
		return http.StatusGatewayTimeout
	case middleware.ReplyCommandUnsupported:
		return http.StatusMethodNotAllowed
	case middleware.ReplyAddressUnsupported:
		return http.StatusBadRequest
	}
	// general failure, network or host unreachable, connection refused
	return http.StatusBadGateway
}

// httpReply records a reply on s and, for a failure, answers its HTTP
// status and closes. Success is answered by the caller (200 for CONNECT,
// the destination's response otherwise).
func httpReply(s *middleware.Session, code middleware.Reply) error {
	s.Reply, s.ReplySent = code, true
	if code == middleware.ReplySucceeded {
		return nil
	}
	return writeHTTPError(s.Conn, httpStatus(code), nil)
}

// writeHTTPError writes a short error response that closes the
// connection.
func writeHTTPError(w io.Writer, status int, h http.Header) error {
	text := http.StatusText(status)
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Connection", "close")
	resp := &http.Response{
		StatusCode:    status,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: int64(len(text) + 1),
		Body:          io.NopCloser(strings.NewReader(text + "\n")),
		Close:         true,
	}
	return resp.Write(w)
}

// hopByHop are the fields that describe one connection, not the message
// (RFC 9110 §7.6.1, and the proxy's own Proxy-* fields); a proxy removes
// them, with every field the Connection field names.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopByHop removes the hop-by-hop fields from h.
func removeHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}

// forwardHTTP forwards one absolute-form request over dest and writes the
// response back, then the connection closes (Connection: close).
func (t *terminal) forwardHTTP(ctx context.Context, s *middleware.Session, req *http.Request, dest net.Conn) error {
	s.Reply, s.ReplySent = middleware.ReplySucceeded, true
	out := req.WithContext(ctx)
	out.RequestURI = "" // a client request, in origin form to the origin
	removeHopByHop(out.Header)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // add none
	}
	up := &countingConn{Conn: dest, s: s}
	var used atomic.Bool
	tr := &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			if used.Swap(true) {
				return nil, errors.New("core: one connection per forwarded request")
			}
			return up, nil
		},
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: httpMaxHeader,
		ResponseHeaderTimeout:  t.settings.ConnectTimeout + t.settings.IdleTimeout,
	}
	if t.settings.IdleTimeout == 0 {
		tr.ResponseHeaderTimeout = 0
	}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(out)
	if err != nil {
		writeHTTPError(s.Conn, http.StatusBadGateway, nil)
		return err
	}
	defer resp.Body.Close()
	removeHopByHop(resp.Header)
	resp.Close = true
	return resp.Write(&countingWriter{w: s.Conn, s: s})
}

// countingConn counts the bytes written to the destination as Up.
type countingConn struct {
	net.Conn
	s *middleware.Session
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.s.Up.Add(int64(n))
	c.s.Active.Store(time.Now().UnixNano())
	return n, err
}

// countingWriter counts the bytes written to the client as Down.
type countingWriter struct {
	w io.Writer
	s *middleware.Session
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.s.Down.Add(int64(n))
	c.s.Active.Store(time.Now().UnixNano())
	return n, err
}
