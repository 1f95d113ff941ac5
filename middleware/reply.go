package middleware

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
)

// Reply is an RFC 1928 REP code.
type Reply uint8

// RFC 1928 reply codes.
const (
	ReplySucceeded          Reply = 0x00
	ReplyGeneralFailure     Reply = 0x01
	ReplyNotAllowed         Reply = 0x02
	ReplyNetworkUnreachable Reply = 0x03
	ReplyHostUnreachable    Reply = 0x04
	ReplyConnectionRefused  Reply = 0x05
	ReplyTTLExpired         Reply = 0x06
	ReplyCommandUnsupported Reply = 0x07
	ReplyAddressUnsupported Reply = 0x08
)

var replyText = [...]string{
	"succeeded",
	"general SOCKS server failure",
	"connection not allowed by ruleset",
	"network unreachable",
	"host unreachable",
	"connection refused",
	"TTL expired",
	"command not supported",
	"address type not supported",
}

// String returns the RFC 1928 wording of the code.
func (r Reply) String() string {
	if int(r) < len(replyText) {
		return replyText[r]
	}
	return "reply 0x" + strconv.FormatUint(uint64(r), 16)
}

// ReplyError is an error that carries the SOCKS reply code the client must
// get. A stage's Dialer returns one to choose the code (a destination policy
// returns ReplyNotAllowed); the terminal handler finds it with errors.As.
type ReplyError struct {
	Code Reply
	Err  error
}

// Error describes the failure.
func (e *ReplyError) Error() string {
	if e.Err == nil {
		return "socks: " + e.Code.String()
	}
	return "socks: " + e.Code.String() + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *ReplyError) Unwrap() error { return e.Err }

// ReplyFor maps a failed dial to the RFC 1928 reply code the client gets.
// It is the engine's one mapping, for CONNECT, BIND and UDP alike: a
// *ReplyError anywhere in err's chain gives its Code; otherwise a DNS
// failure gives ReplyHostUnreachable (ReplyTTLExpired when it timed out),
// a refused connection ReplyConnectionRefused, an unreachable network or
// host ReplyNetworkUnreachable or ReplyHostUnreachable, an address family
// the system lacks ReplyAddressUnsupported, a permission error
// ReplyNotAllowed, a timeout (the connect timeout included)
// ReplyTTLExpired, and anything else ReplyGeneralFailure.
func ReplyFor(err error) Reply {
	var re *ReplyError
	if errors.As(err, &re) {
		return re.Code
	}
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return ReplyTTLExpired
		}
		return ReplyHostUnreachable
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReplyConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return ReplyNetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		return ReplyHostUnreachable
	case errors.Is(err, syscall.EAFNOSUPPORT):
		return ReplyAddressUnsupported
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return ReplyNotAllowed
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return ReplyTTLExpired
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReplyTTLExpired
	}
	return ReplyGeneralFailure
}

// DialError returns the error the engine reports for a failed dial: err
// itself when its chain already holds a *ReplyError (a stage's refusal
// passes through as the stage wrote it, so its text is not repeated), or
// err wrapped in a *ReplyError with the code ReplyFor chooses. Either way
// errors.As finds the *ReplyError and errors.Is finds err's sentinels.
func DialError(err error) error {
	var re *ReplyError
	if errors.As(err, &re) {
		return err
	}
	return &ReplyError{Code: ReplyFor(err), Err: err}
}
