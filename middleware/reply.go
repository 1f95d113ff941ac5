package middleware

import "strconv"

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
