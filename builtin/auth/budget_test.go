package auth_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socks5d/socks5d/builtin/auth"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// slowUsers stands in for the engine's table, where a wrong password costs
// a bcrypt comparison: it asks spend before each such "hash", counts the
// hashes made, and holds each one until hold is closed (nil: no wait).
type slowUsers struct {
	mwtest.Users
	hold   chan struct{}
	hashes atomic.Int64
}

func (u *slowUsers) Verify(name, password string, spend func() bool) (middleware.Role, bool) {
	if role, ok := u.Users.Verify(name, password, nil); ok {
		return role, true // the right password, known by its digest
	}
	if spend != nil && !spend() {
		return 0, false
	}
	u.hashes.Add(1)
	if u.hold != nil {
		<-u.hold
	}
	return 0, false
}

// Wrong guesses buy slow password checks no faster than the ban allows:
// max_failures checks and the one of the guess that starts the ban, even
// when they all arrive at once on parallel connections; the guesses beyond
// are refused without a check. Other addresses keep their own allowance,
// and a right password needs none.
func TestSlowChecksBudgeted(t *testing.T) {
	const guesses = 20
	p := mwtest.Params("auth", map[string]any{"max_failures": 5, "failure_window": "1h"})
	u := &slowUsers{Users: users(), hold: make(chan struct{})}
	p.Users = u
	mw := mwtest.New(t, auth.Type, p)

	errs := make(chan error, guesses)
	var wg sync.WaitGroup
	var done atomic.Int64
	for range guesses {
		wg.Go(func() {
			errs <- login(t, mw, attacker, "nobody", "guess")
			done.Add(1)
		})
	}
	// Every guess beyond the allowance ends without a check (out of
	// checks, then banned by those refusals) while the checks in flight
	// are held.
	deadline := time.Now().Add(10 * time.Second)
	for done.Load() < guesses-6 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if h, d := u.hashes.Load(), done.Load(); h != 6 || d != guesses-6 {
		t.Errorf("%d parallel guesses: %d slow checks started, %d guesses answered unchecked; want 6 and %d", guesses, h, d, guesses-6)
	}
	close(u.hold)
	wg.Wait()
	close(errs)
	if h := u.hashes.Load(); h != 6 {
		t.Fatalf("%d parallel guesses: %d slow checks, want 6", guesses, h)
	}
	reasons := map[error]int{}
	for err := range errs {
		if !errors.Is(err, middleware.ErrBadCredentials) {
			t.Errorf("guess: err = %v, want ErrBadCredentials", err)
		}
		for _, e := range []error{auth.ErrCheckBudget, auth.ErrBanned} {
			if errors.Is(err, e) {
				reasons[e]++
			}
		}
	}
	if reasons[auth.ErrCheckBudget] == 0 || reasons[auth.ErrCheckBudget]+reasons[auth.ErrBanned] != guesses-6 {
		t.Errorf("refusals unchecked: %v, want %d, some out of checks", reasons, guesses-6)
	}
	// Sequential guesses later find the address banned: still no check.
	if err := login(t, mw, attacker, "alice", "guess"); !errors.Is(err, auth.ErrBanned) {
		t.Errorf("after the flood: err = %v, want ErrBanned", err)
	}
	if h := u.hashes.Load(); h != 6 {
		t.Errorf("%d slow checks after the ban, want 6", h)
	}
	// Another address has its own allowance; the right password needs none.
	if err := login(t, mw, other, "alice", "guess"); err == nil || errors.Is(err, auth.ErrCheckBudget) {
		t.Errorf("another address, wrong password: err = %v, want an ordinary failure", err)
	}
	if err := login(t, mw, other, "alice", "wonderland"); err != nil {
		t.Errorf("another address, right password: %v", err)
	}
	if h := u.hashes.Load(); h != 7 {
		t.Errorf("%d slow checks, want 7", h)
	}
}

// Sequentially, a group gets max_failures+1 checks, so the guess that
// starts the ban is still checked (a user who mistyped max_failures times
// can still log in, as before), and nothing more until the allowance
// refills.
func TestSlowChecksSequential(t *testing.T) {
	p := mwtest.Params("auth", map[string]any{"max_failures": 3, "failure_window": "1h"})
	u := &slowUsers{Users: users()}
	p.Users = u
	mw := mwtest.New(t, auth.Type, p)
	for range 10 {
		_ = login(t, mw, attacker, "alice", "guess")
	}
	if h := u.hashes.Load(); h != 4 {
		t.Errorf("10 guesses with max_failures 3: %d slow checks, want 4", h)
	}
	// Guard off: no budget (the operator bans elsewhere).
	p = mwtest.Params("auth", map[string]any{"max_failures": 0})
	u = &slowUsers{Users: users()}
	p.Users = u
	mw = mwtest.New(t, auth.Type, p)
	for range 10 {
		_ = login(t, mw, attacker, "alice", "guess")
	}
	if h := u.hashes.Load(); h != 10 {
		t.Errorf("guard off: %d slow checks for 10 guesses, want 10", h)
	}
}

// coldUsers stands in for the engine's table right after a start, when no
// digest is cached yet: every check, right passwords included, costs a
// slow comparison and so asks spend first.
type coldUsers struct {
	mwtest.Users
	hashes atomic.Int64
}

func (u *coldUsers) Verify(name, password string, spend func() bool) (middleware.Role, bool) {
	if spend != nil && !spend() {
		return 0, false
	}
	u.hashes.Add(1)
	return u.Users.Verify(name, password, nil)
}

// Right passwords give their slow check back: many users behind one
// address (a NAT, or everyone after a restart) all log in, however many
// there are, while wrong guesses from that address are still budgeted.
func TestSlowChecksRefundedOnSuccess(t *testing.T) {
	p := mwtest.Params("auth", map[string]any{"max_failures": 3, "failure_window": "1h"})
	u := &coldUsers{Users: users()}
	p.Users = u
	mw := mwtest.New(t, auth.Type, p)
	for i := range 20 {
		if err := login(t, mw, attacker, "alice", "wonderland"); err != nil {
			t.Fatalf("right password, login %d: %v", i+1, err)
		}
	}
	for range 10 {
		_ = login(t, mw, attacker, "alice", "guess")
	}
	if h := u.hashes.Load(); h != 20+4 {
		t.Errorf("20 right logins then 10 guesses with max_failures 3: %d slow checks, want 24", h)
	}
}
