package filter

import (
	"errors"
	"net/netip"
	"strconv"
)

// Sentinel errors.
var (
	// ErrDenied is wrapped (through *DeniedError) by the error the policy
	// dialer returns for a destination the policy refuses. That error is a
	// *middleware.ReplyError with code ReplyNotAllowed, so the client gets
	// reply 0x02.
	ErrDenied = errors.New("filter: destination not allowed")
	// ErrAddress is returned by the policy dialer for an address it cannot
	// check (no host, or a port that is not a number): it fails closed.
	ErrAddress = errors.New("filter: cannot check address")
	// ErrNetwork is returned by the policy dialer for a network other than
	// tcp, tcp4, tcp6, udp, udp4 or udp6: it fails closed.
	ErrNetwork = errors.New("filter: unsupported network")
	// ErrRuleSyntax is wrapped by ParseItem for a line that is not in the
	// one-line rule syntax.
	ErrRuleSyntax = errors.New("filter: bad rule syntax")
)

// DeniedError says which destination the policy refused, and why. It
// unwraps to ErrDenied.
type DeniedError struct {
	// Target is the host (name or address) that was asked for.
	Target string
	// Addr is the address that was refused when Target is a name that
	// resolved to it; it is invalid when the name itself was refused.
	Addr netip.Addr
	// Rule is the index of the deciding rule in the rules list (as in
	// rules[N]), or -1 when the default action refused it.
	Rule int
}

// Error describes the refusal, e.g.
// "filter: destination not allowed: rebind.test (127.0.0.1) by rules[0]".
func (e *DeniedError) Error() string {
	s := ErrDenied.Error() + ": " + e.Target
	if e.Addr.IsValid() {
		s += " (" + e.Addr.String() + ")"
	}
	return s + " by " + ruleName(e.Rule)
}

// Unwrap returns ErrDenied.
func (e *DeniedError) Unwrap() error { return ErrDenied }

// ruleName names a deciding rule as errors and logs do.
func ruleName(i int) string {
	if i < 0 {
		return "the default"
	}
	return "rules[" + strconv.Itoa(i) + "]"
}
