package pctp

import (
	"errors"
	"strings"
)

// Sentinel errors.
var (
	// ErrBadCommand is returned by Client.Do for a command that cannot be
	// sent as one line (it contains CR or LF).
	ErrBadCommand = errors.New("pctp: command must be one line without CR or LF")
	// ErrProtocol is returned by the Client when the server's reply does not
	// follow PCTP's framing.
	ErrProtocol = errors.New("pctp: protocol error")
	// ErrClosed is returned by the Client once the connection is closed.
	ErrClosed = errors.New("pctp: connection closed")
	// ErrNoListener is returned by Server.Serve when it gets a nil listener.
	ErrNoListener = errors.New("pctp: nil listener")
	// ErrNoAdmin is returned by Server.Serve when the Server has no Admin.
	ErrNoAdmin = errors.New("pctp: Server.Admin is nil")
)

// ReplyError is the error Client.Login returns when the server answers
// -ERR. It names the command's keyword, never its argument (which may be a
// password).
type ReplyError struct {
	Keyword string // the command, e.g. "PASS"
	Status  string // the server's status line, e.g. "-ERR Invalid credentials"
}

// Error returns "pctp: <keyword>: <status line>".
func (e *ReplyError) Error() string {
	return "pctp: " + e.Keyword + ": " + strings.TrimSpace(e.Status)
}
