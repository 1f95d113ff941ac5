package connlog

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/socks5d/socks5d/middleware"
)

// Close reasons, the reason field of a record. They are derived from the
// session's facts and the error the rest of the chain returned.
const (
	ReasonOK          = "ok"          // the relay ended normally (both sides done)
	ReasonEOF         = "eof"         // the client hung up before the relay
	ReasonAuthFailed  = "auth_failed" // RFC 1929 credentials refused
	ReasonDenied      = "denied"      // reply 2: not allowed by a rule
	ReasonRefused     = "refused"     // reply 5: the destination refused
	ReasonUnreachable = "unreachable" // reply 3 or 4: network or host unreachable
	ReasonUnsupported = "unsupported" // reply 7 or 8: command or address type
	ReasonTimeout     = "timeout"     // a deadline passed: handshake, dial (reply 6), idle
	ReasonKilled      = "killed"      // the server ended it: KILL, user deleted, shutdown
	ReasonReset       = "reset"       // a peer reset the connection (or a broken pipe)
	ReasonClosed      = "closed"      // the connection was closed under the session
	ReasonError       = "error"       // anything else: protocol error, general failure, ...
)

// CloseReason classifies how a session ended, given the context it was
// served with and the error next returned. See the Reason constants. In
// order: an error after the session's context was cancelled is "killed";
// then failed authentication; then a failure reply, by its code; then no
// error is "ok"; then the kind of error.
func CloseReason(ctx context.Context, s *middleware.Session, err error) string {
	if cerr := ctx.Err(); cerr != nil && err != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return ReasonTimeout
		}
		return ReasonKilled
	}
	if s.AuthState == middleware.AuthFailed {
		return ReasonAuthFailed
	}
	if err != nil { // errors.As allocates: only on failure
		var re *middleware.ReplyError
		if errors.As(err, &re) {
			return replyReason(re.Code)
		}
	}
	switch {
	case s.ReplySent && s.Reply != middleware.ReplySucceeded:
		return replyReason(s.Reply)
	case err == nil:
		return ReasonOK
	}
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ReasonEOF
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ETIMEDOUT), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return ReasonReset
	case errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrClosedPipe):
		return ReasonClosed
	case errors.Is(err, context.Canceled):
		return ReasonKilled
	}
	return ReasonError
}

func replyReason(code middleware.Reply) string {
	switch code {
	case middleware.ReplyNotAllowed:
		return ReasonDenied
	case middleware.ReplyConnectionRefused:
		return ReasonRefused
	case middleware.ReplyNetworkUnreachable, middleware.ReplyHostUnreachable:
		return ReasonUnreachable
	case middleware.ReplyTTLExpired:
		return ReasonTimeout
	case middleware.ReplyCommandUnsupported, middleware.ReplyAddressUnsupported:
		return ReasonUnsupported
	}
	return ReasonError
}
