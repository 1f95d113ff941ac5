package auth

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
)

// Backend types, as named after `type:` in the backends list.
const (
	BackendLocal = "local"
	BackendLDAP  = "ldap"
	BackendHTTP  = "http"
)

// What a backend does when it cannot answer (on_error).
const (
	OnErrorDeny = "deny"
	OnErrorNext = "next"
)

// errorLogInterval is how often a backend that keeps failing is logged:
// the first failure at once, then at most one line per interval with the
// count of failures in between.
const errorLogInterval = time.Minute

// BackendConfig is one entry of the stage's backends list. Keys that do
// not apply to the type are refused.
type BackendConfig struct {
	// Type is local, ldap or http.
	Type string `json:"type"`
	// Name tells two backends of one type apart in STATS and logs
	// (default: the type).
	Name string `json:"name"`
	// OnError is deny (fail closed, the default) or next (ask the next
	// backend) when the backend cannot answer.
	OnError string `json:"on_error"`
	// Timeout bounds one check (default 5s).
	Timeout middleware.Duration `json:"timeout"`
	// URL is the directory (ldap://host:port, ldaps://host:port) or the
	// hook (http://..., https://...).
	URL string `json:"url"`
	// CAFile is a PEM file of the certificate authorities trusted for
	// LDAPS, StartTLS or an https hook (default: the system's).
	CAFile string `json:"ca_file"`

	LDAPConfig
}

// verdict is a backend's answer about one user.
type verdict uint8

const (
	unknownUser verdict = iota // the backend does not know the user: ask the next
	allowUser                  // right password: the backend decides
	denyUser                   // known user, wrong password (or refused): the backend decides
)

// backend is a remote source of users: an LDAP directory or an HTTP hook.
// check never logs or returns the password.
type backend interface {
	check(ctx context.Context, user, password string, from origin) (verdict, middleware.Role, error)
}

// origin is where a login comes from: the SOCKS listener with the
// client's address, or the admin port (PCTP, no address).
type origin struct {
	listener string // "socks" or "pctp"
	client   netip.Addr
}

// remote is a configured remote backend with its failure accounting.
type remote struct {
	name    string // STATS and log name
	next    bool   // on_error: next
	timeout time.Duration
	b       backend
	health  *health
}

// health counts a backend's failures; it lives in the shared pool so
// counts survive a rebuild of the chain.
type health struct {
	errors   atomic.Int64 // checks that failed because the backend could not answer
	checks   atomic.Int64 // checks the backend answered
	down     atomic.Bool  // the latest check failed
	lastLog  atomic.Int64 // unix nanoseconds of the latest error line
	unlogged atomic.Int64 // errors since that line
}

// failed counts one failure and logs it unless a line was written within
// errorLogInterval; the next line says how many were not logged.
func (h *health) failed(log hclog.Logger, name string, err error, now time.Time) {
	h.errors.Add(1)
	h.down.Store(true)
	last := h.lastLog.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < errorLogInterval {
		h.unlogged.Add(1)
		return
	}
	if !h.lastLog.CompareAndSwap(last, now.UnixNano()) {
		h.unlogged.Add(1)
		return
	}
	log.Error("authentication backend unavailable", "backend", name, "error", err.Error(),
		"errors_since_last_line", h.unlogged.Swap(0))
}

// answered records a check the backend answered, logging the recovery
// once after a failure.
func (h *health) answered(log hclog.Logger, name string) {
	h.checks.Add(1)
	if h.down.Swap(false) {
		log.Info("authentication backend answers again", "backend", name)
	}
}

// chainConfig is the parsed backends list.
type chainConfig struct {
	local   bool // the local list is one of the backends
	remotes []*remote
	// order has one entry per backend: -1 for the local list, otherwise
	// an index into remotes.
	order []int
}

// buildBackends checks the backends list and builds it; errors wrap
// middleware.ErrBadValue and name the entry and the key.
func buildBackends(list []BackendConfig, p middleware.Params) (chainConfig, error) {
	var cc chainConfig
	if len(list) == 0 {
		list = []BackendConfig{{Type: BackendLocal}}
	}
	names := map[string]bool{}
	for i, bc := range list {
		bad := func(key, format string, args ...any) error {
			return fmt.Errorf("%w: key \"backends\" entry %d (%s): %q: %s", middleware.ErrBadValue, i, bc.Type, key, fmt.Sprintf(format, args...))
		}
		name := bc.Name
		if name == "" {
			name = bc.Type
		}
		if strings.ContainsAny(name, " \t\r\n:=") {
			return cc, bad("name", "%q: no spaces, ':' or '='", name)
		}
		if names[name] {
			return cc, bad("name", "%q is used twice; give each backend of one type a name", name)
		}
		names[name] = true
		onErr := bc.OnError
		switch onErr {
		case "":
			onErr = OnErrorDeny
		case OnErrorDeny, OnErrorNext:
		default:
			return cc, bad("on_error", "%q is not deny or next", bc.OnError)
		}
		timeout := time.Duration(bc.Timeout)
		if timeout == 0 {
			timeout = 5 * time.Second
		}
		if timeout > time.Minute {
			return cc, bad("timeout", "%s is longer than 1m", bc.Timeout)
		}
		var b backend
		var err error
		switch bc.Type {
		case BackendLocal:
			if bc.LDAPConfig != (LDAPConfig{}) || bc.URL != "" || bc.CAFile != "" || bc.OnError != "" || bc.Timeout != 0 {
				return cc, bad("type", "the local list takes no other keys")
			}
			if cc.local {
				return cc, bad("type", "the local list is named twice")
			}
			cc.local = true
			cc.order = append(cc.order, -1)
			continue
		case BackendLDAP:
			b, err = newLDAP(bc, timeout)
		case BackendHTTP:
			if bc.LDAPConfig != (LDAPConfig{}) {
				return cc, bad("type", "ldap keys on an http backend")
			}
			b, err = newHook(bc, timeout)
		default:
			return cc, bad("type", "%q is not local, ldap or http", bc.Type)
		}
		if err != nil {
			return cc, fmt.Errorf("%w: key \"backends\" entry %d (%s): %w", middleware.ErrBadValue, i, bc.Type, err)
		}
		cc.order = append(cc.order, len(cc.remotes))
		cc.remotes = append(cc.remotes, &remote{
			name:    name,
			next:    onErr == OnErrorNext,
			timeout: timeout,
			b:       b,
			health:  middleware.Get(p.Shared, p.Name+".backend."+name, func() *health { return new(health) }),
		})
	}
	return cc, nil
}

// decide asks the backends in order; the first that knows the user
// decides. The local list knows its own users (a user it does not hold is
// passed on without a check). A remote check is taken from the client's
// budget (spend) like a bcrypt comparison, and a password a remote
// accepted is cached for cacheTTL under a keyed hash. When nobody knows
// the user, one check against the local list's dummy hash makes the
// failure cost what a wrong local password costs. downErr is the error of
// a backend that could not answer and failed closed (on_error: deny).
//
// remote reports that a remote backend (or the cache of its answers)
// accepted the user.
func (a *authenticator) decide(ctx context.Context, user, password string, from origin, spend func() bool) (role middleware.Role, remote bool, ok bool, downErr error) {
	bc := a.backends
	if len(bc.remotes) == 0 { // the local list alone: as before backends
		role, ok = a.users.Verify(user, password, spend)
		return role, false, ok, nil
	}
	if !middleware.ValidCredentialLength(password) || !middleware.ValidCredentialLength(user) {
		return 0, false, false, nil
	}
	lookup, canLookup := a.users.(middleware.UserLookup)
	checked := false // a remote was asked: the failure has cost a check
	for _, i := range bc.order {
		if i < 0 {
			if canLookup && !lookup.Has(user) {
				continue
			}
			role, ok = a.users.Verify(user, password, spend)
			return role, false, ok, nil
		}
		r := bc.remotes[i]
		if a.cacheTTL > 0 {
			if role, from, hit := a.cache.get(user, password); hit && from == r.name {
				return role, true, true, nil
			}
		}
		if spend != nil && !spend() {
			return 0, false, false, nil
		}
		checked = true
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		v, role, err := r.b.check(cctx, user, password, from)
		cancel()
		if err != nil {
			r.health.failed(a.log, r.name, err, time.Now())
			if r.next {
				continue
			}
			return 0, false, false, fmt.Errorf("backend %s: %w", r.name, err)
		}
		r.health.answered(a.log, r.name)
		switch v {
		case allowUser:
			if a.cacheTTL > 0 {
				a.cache.put(user, password, role, r.name, a.cacheTTL)
			}
			return role, true, true, nil
		case denyUser:
			return 0, false, false, nil
		}
	}
	// Nobody knows the user: cost what a wrong local password costs.
	if bc.local && !checked {
		a.users.Verify(user, password, spend)
	}
	return 0, false, false, nil
}
