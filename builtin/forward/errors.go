package forward

import (
	"errors"
	"strconv"
)

// Sentinel errors.
var (
	// ErrUpstream is wrapped (through *UpstreamError) by a dial through an
	// upstream proxy that failed: unreachable, a failed handshake, a
	// refusal, or a reply the upstream sent about the destination.
	ErrUpstream = errors.New("forward: upstream failed")
	// ErrBackoff is wrapped by a dial that was not tried because an
	// upstream of its egress failed too often and is skipped for a while.
	ErrBackoff = errors.New("forward: upstream skipped after repeated failures")
	// ErrCommand is wrapped by the refusal (reply 0x07) of a BIND or UDP
	// ASSOCIATE whose rule sends it through an upstream proxy.
	ErrCommand = errors.New("forward: command not supported through an upstream proxy")
	// ErrRuleSyntax is wrapped by ParseItem for a line that is not in the
	// one-line rule syntax.
	ErrRuleSyntax = errors.New("forward: bad rule syntax")
	// ErrSocket is wrapped when the outgoing socket cannot be bound to the
	// rule's local address or interface.
	ErrSocket = errors.New("forward: cannot set up the outgoing socket")
)

// UpstreamError says which upstream failed, and how. It unwraps to
// ErrUpstream and to the cause. Upstream is the upstream's URL with its
// password masked.
type UpstreamError struct {
	Upstream string
	// Reply is the SOCKS5 reply code the upstream sent (0 when it sent
	// none, or for HTTP); Status the HTTP status (0 for SOCKS5).
	Reply  uint8
	Status int
	Err    error
}

// Error describes the failure, never with a password.
func (e *UpstreamError) Error() string {
	s := ErrUpstream.Error() + ": " + e.Upstream
	switch {
	case e.Reply != 0:
		s += ": reply 0x0" + strconv.FormatUint(uint64(e.Reply), 16)
	case e.Status != 0:
		s += ": HTTP " + strconv.Itoa(e.Status)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns ErrUpstream and the cause.
func (e *UpstreamError) Unwrap() []error { return []error{ErrUpstream, e.Err} }
