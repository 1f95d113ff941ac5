package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/socks5d/socks5d/middleware"
)

func TestReplyFor(t *testing.T) {
	denied := &middleware.ReplyError{Code: middleware.ReplyNotAllowed, Err: errors.New("policy")}
	tests := []struct {
		name string
		err  error
		want middleware.Reply
	}{
		{"reply error", denied, middleware.ReplyNotAllowed},
		{"wrapped reply error", fmt.Errorf("upstream: %w", denied), middleware.ReplyNotAllowed},
		{"dns not found", &net.DNSError{Err: "no such host", IsNotFound: true}, middleware.ReplyHostUnreachable},
		{"dns timeout", &net.DNSError{Err: "timeout", IsTimeout: true}, middleware.ReplyTTLExpired},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, middleware.ReplyConnectionRefused},
		{"net unreachable", &net.OpError{Op: "dial", Err: syscall.ENETUNREACH}, middleware.ReplyNetworkUnreachable},
		{"host unreachable", &net.OpError{Op: "dial", Err: syscall.EHOSTUNREACH}, middleware.ReplyHostUnreachable},
		{"host down", syscall.EHOSTDOWN, middleware.ReplyHostUnreachable},
		{"family", syscall.EAFNOSUPPORT, middleware.ReplyAddressUnsupported},
		{"permission", syscall.EACCES, middleware.ReplyNotAllowed},
		{"connect timeout", context.DeadlineExceeded, middleware.ReplyTTLExpired},
		{"deadline", os.ErrDeadlineExceeded, middleware.ReplyTTLExpired},
		{"other", errors.New("boom"), middleware.ReplyGeneralFailure},
	}
	for _, tt := range tests {
		if got := middleware.ReplyFor(tt.err); got != tt.want {
			t.Errorf("%s: ReplyFor = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestDialErrorPassesRefusalsThrough: a stage's ReplyError reaches the
// engine as the stage wrote it (its reply text once); any other failure is
// wrapped with the code ReplyFor chooses, keeping the cause for errors.Is.
func TestDialErrorPassesRefusalsThrough(t *testing.T) {
	sentinel := errors.New("portguard: blocked")
	refusal := fmt.Errorf("stage: %w", &middleware.ReplyError{Code: middleware.ReplyNotAllowed, Err: sentinel})
	got := middleware.DialError(refusal)
	if got != refusal {
		t.Errorf("DialError(refusal) = %v, want the refusal itself", got)
	}
	if n := strings.Count(got.Error(), middleware.ReplyNotAllowed.String()); n != 1 {
		t.Errorf("%q names the reply %d times, want once", got, n)
	}

	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	got = middleware.DialError(refused)
	var re *middleware.ReplyError
	if !errors.As(got, &re) || re.Code != middleware.ReplyConnectionRefused || !errors.Is(got, syscall.ECONNREFUSED) {
		t.Errorf("DialError(refused) = %#v, want a ReplyError 0x05 wrapping ECONNREFUSED", got)
	}
}
