package pctp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// DefaultClientTimeout bounds one Client.Do round trip unless
// Client.Timeout says otherwise.
const DefaultClientTimeout = 30 * time.Second

// maxClientLine is the longest reply line the Client accepts.
const maxClientLine = 64 << 10

// Reply is a server's answer to one command.
type Reply struct {
	// OK is true for +OK, false for -ERR.
	OK bool
	// Status is the whole status line without its LF, such as
	// "+OK Sending stats..." or "-ERR Unknown command".
	Status string
	// Lines are the data lines of a multi-line reply, without the empty
	// line that ends it.
	Lines []string
	// Multiline is true when the reply was multi-line (even with no data
	// lines).
	Multiline bool
}

// String returns the reply as it was on the wire: the status line, then
// for a multi-line reply each data line and an empty line, each line ended
// by LF.
func (r Reply) String() string {
	var b strings.Builder
	b.WriteString(r.Status)
	b.WriteByte('\n')
	if r.Multiline {
		for _, l := range r.Lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Client is one PCTP connection. It knows which replies are multi-line from
// the server's command registry (ExpectsMultiline), never from timing. Its
// methods must not be called concurrently.
type Client struct {
	// Timeout bounds each Do (the command and its whole reply); zero or
	// negative means no limit. Dial sets DefaultClientTimeout.
	Timeout time.Duration

	conn net.Conn
	r    *bufio.Reader
	err  error // sticky: once set, every Do returns it
}

// Dial connects to a PCTP server at addr (host:port). ctx bounds the
// connection attempt only.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pctp: %w", err)
	}
	return NewClient(conn), nil
}

// NewClient returns a Client speaking over conn, which it then owns.
func NewClient(conn net.Conn) *Client {
	return &Client{Timeout: DefaultClientTimeout, conn: conn, r: bufio.NewReader(conn)}
}

// Close closes the connection. It does not send EXIT.
func (c *Client) Close() error {
	if c.err == nil {
		c.err = ErrClosed
	}
	return c.conn.Close()
}

// Do sends one command line (without its line end) and reads the whole
// reply. A -ERR reply is not an error: check Reply.OK. The error is for a
// command that cannot be sent, a broken connection or a reply that breaks
// the framing; after such an error (and after a successful EXIT) the
// Client is closed.
func (c *Client) Do(cmd string) (Reply, error) {
	rs, err := c.Pipeline(cmd)
	if err != nil {
		return Reply{}, err
	}
	return rs[0], nil
}

// Pipeline sends every command at once and then reads their replies in
// order: one round trip for all of them, which a refreshing view over a
// slow link needs. Timeout bounds the whole exchange. Errors are as for Do;
// on an error no reply is returned. A successful EXIT among the commands
// closes the Client after its reply, and commands after it are not sent.
func (c *Client) Pipeline(cmds ...string) ([]Reply, error) {
	if c.err != nil {
		return nil, c.err
	}
	var b strings.Builder
	for i, cmd := range cmds {
		if strings.ContainsAny(cmd, "\r\n") {
			return nil, ErrBadCommand
		}
		b.WriteString(cmd)
		b.WriteByte('\n')
		if parseLine(cmd).name() == "EXIT" {
			cmds = cmds[:i+1]
			break
		}
	}
	var deadline time.Time
	if c.Timeout > 0 {
		deadline = time.Now().Add(c.Timeout)
	}
	_ = c.conn.SetDeadline(deadline)
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		return nil, c.fail(err)
	}
	replies := make([]Reply, 0, len(cmds))
	for _, cmd := range cmds {
		r, err := c.readReply(cmd)
		if err != nil {
			return nil, err
		}
		replies = append(replies, r)
	}
	return replies, nil
}

// readReply reads the reply to cmd.
func (c *Client) readReply(cmd string) (Reply, error) {
	status, err := c.readLine()
	if err != nil {
		return Reply{}, c.fail(err)
	}
	r := Reply{Status: status}
	switch {
	case status == "+OK" || strings.HasPrefix(status, "+OK "):
		r.OK = true
	case status == "-ERR" || strings.HasPrefix(status, "-ERR "):
	default:
		return Reply{}, c.fail(fmt.Errorf("%w: bad status line %q", ErrProtocol, truncate(status, 64)))
	}
	if r.OK && ExpectsMultiline(cmd) {
		r.Multiline = true
		r.Lines = []string{}
		for {
			l, err := c.readLine()
			if err != nil {
				return Reply{}, c.fail(err)
			}
			if l == "" {
				break
			}
			r.Lines = append(r.Lines, l)
		}
	}
	if r.OK && parseLine(cmd).name() == "EXIT" {
		c.Close() // the server closes its side after +OK Done
	}
	return r, nil
}

// Login sends USER and PASS. A -ERR reply is returned as a *ReplyError,
// which never holds the password.
func (c *Client) Login(user, password string) error {
	for _, step := range [...]struct{ kw, arg string }{{"USER", user}, {"PASS", password}} {
		r, err := c.Do(step.kw + " " + step.arg)
		if err != nil {
			return err
		}
		if !r.OK {
			return &ReplyError{Keyword: step.kw, Status: r.Status}
		}
	}
	return nil
}

// readLine reads one reply line and strips its LF (only: a CR the server
// sent stays visible, since PCTP replies end with LF alone).
func (c *Client) readLine() (string, error) {
	var long []byte
	for {
		b, err := c.r.ReadSlice('\n')
		switch {
		case err == nil:
			if long == nil {
				return string(b[:len(b)-1]), nil
			}
			long = append(long, b[:len(b)-1]...)
			return string(long), nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(long)+len(b) > maxClientLine {
				return "", fmt.Errorf("%w: reply line longer than %d octets", ErrProtocol, maxClientLine)
			}
			long = append(long, b...)
		case errors.Is(err, io.EOF):
			return "", fmt.Errorf("%w by the server", ErrClosed)
		default:
			return "", fmt.Errorf("pctp: %w", err)
		}
	}
}

// fail makes err sticky and closes the connection.
func (c *Client) fail(err error) error {
	c.err = err
	c.conn.Close()
	return err
}
