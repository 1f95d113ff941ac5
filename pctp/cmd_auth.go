package pctp

import (
	"context"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
)

// Replies to invalid arguments.
const (
	badNameLength     = "User name must be 1 to 255 octets"
	badPasswordLength = "Password must be 1 to 255 octets"
)

// authCommands are the AUTHORIZATION commands. USER and PASS also carry the
// ADD dialogue, whose steps live in cmd_users.go.
func authCommands() []*command {
	return []*command{{
		keywords: []string{"USER"},
		phases:   phasesAuthorization | phaseAddUser,
		arg:      argRequired,
		validate: validName,
		usage:    "USER <name>",
		help:     "Start logging in as an ADMIN user",
		handle:   cmdUser,
	}, {
		keywords: []string{"PASS"},
		phases:   phaseAuthPass | phaseAddPass,
		arg:      argRequired,
		validate: validPassword,
		secret:   true,
		usage:    "PASS <password>",
		help:     "Finish logging in with the password",
		handle:   cmdPass,
	}}
}

// sessionCommands are valid in both phases; they come last in HELP.
func sessionCommands() []*command {
	return []*command{{
		keywords: []string{"HELP"},
		phases:   phasesAuthorization | phaseMain,
		arg:      argNone,
		reply:    replyMulti,
		usage:    "HELP",
		help:     "List the commands valid now",
		handle:   cmdHelp,
	}, {
		keywords: []string{"EXIT"},
		phases:   phasesAll,
		arg:      argNone,
		usage:    "EXIT",
		help:     "End the session",
		handle:   cmdExit,
	}}
}

// validName and validPassword apply the one length rule for credentials
// (RFC 1929's 1–255 octets, middleware.ValidCredentialLength).
func validName(arg string) string {
	if !middleware.ValidCredentialLength(arg) {
		return badNameLength
	}
	return ""
}

func validPassword(arg string) string {
	if middleware.CheckPassword(arg) != nil {
		return badPasswordLength
	}
	return ""
}

func cmdUser(_ context.Context, s *session, name string) reply {
	if s.phase == phaseAddUser {
		return s.addUserName(name)
	}
	// The same answer whether or not the user exists: USER must not tell
	// an attacker which names are valid.
	s.user = name
	s.phase = phaseAuthPass
	return ok("Please send password")
}

// Replies to PASS that refuse a login. A wrong password and a BASIC
// user's right one get the same badCredentials, so that PCTP never tells
// which passwords are right.
const (
	badCredentials  = "Invalid credentials"
	lockedOut       = "Too many failed logins, try again later"
	tooManySessions = "Too many sessions"
)

func cmdPass(ctx context.Context, s *session, password string) reply {
	if s.phase == phaseAddPass {
		return s.addUserPass(password)
	}
	srv := s.srv
	// The budgets are taken before the password is looked at: a locked
	// out source or name, or one whose logins in flight already use up
	// its budget, is refused without a check.
	source, name := loginSource(s.client), s.user
	switch srv.acquireLogin(ctx, source, name) {
	case locked:
		return s.refuseLocked()
	case busy: // still busy at the login deadline, or shutting down
		if ctx.Err() != nil {
			return fail("Server shutting down")
		}
		return s.refuseLocked()
	}
	// Slow down a source that keeps failing. The delay comes before the
	// check, so closing the connection early teaches an attacker nothing.
	sleep(ctx, srv.loginDelay(srv.sources.failures(source)))
	if ctx.Err() != nil {
		srv.sources.release(source, false, false)
		srv.names.release(name, false, false)
		return fail("Server shutting down")
	}
	role, good := srv.Admin.Login(name, password)
	// A BASIC user may not log in; refused exactly like a wrong password
	// (same reply, counted and throttled the same), or PCTP would confirm
	// the passwords that the SOCKS side bans guesses of.
	admin := good && role == middleware.RoleAdmin
	if d := srv.sources.release(source, !admin, admin); d > 0 {
		srv.lockouts.Add(1)
		srv.log.Warn("login locked out", "listener", "pctp", "source", source.String(), "for", d.String())
	}
	if d := srv.names.release(name, !admin, false); d > 0 {
		srv.lockouts.Add(1)
		srv.log.Warn("login locked out", "listener", "pctp", "user", hclog.Quote(name), "for", d.String())
	}
	if !admin {
		srv.failed.Add(1)
		// One stable line per failure, the same as the SOCKS side's, for
		// fail2ban; never the password.
		srv.log.Warn("authentication failed", "listener", "pctp", "client_ip", s.client.String(), "user", hclog.Quote(name))
		if good {
			s.log.Debug("the user is not an ADMIN user")
		}
		return fail(badCredentials)
	}
	// Only now is a logged-in slot taken, so that logins being checked
	// never hold the slots; the pool is full only of administrators.
	if !srv.promote(s) {
		s.log.Warn("too many sessions, refusing a login")
		s.closing = true
		return fail(tooManySessions)
	}
	s.setAdmin(name)
	s.user = ""
	s.phase = phaseMain
	s.log.Info("logged in")
	return ok("Successfully logged in")
}

// acquireLogin reserves a login attempt in the budgets of source and
// name, waiting while attempts in flight use them up, for at most the
// login timeout. It never holds one budget while waiting for the other.
func (srv *Server) acquireLogin(ctx context.Context, source netip.Prefix, name string) verdict {
	timeout := time.NewTimer(srv.loginTimeout())
	defer timeout.Stop()
	for {
		v, wait := srv.sources.acquire(source)
		if v == granted {
			if v, wait = srv.names.acquire(name); v == granted {
				return granted
			}
			srv.sources.release(source, false, false)
		}
		if v == locked {
			return locked
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return busy
		case <-timeout.C:
			return busy
		}
	}
}

// refuseLocked answers a PASS from a locked-out source or name. The
// password is not checked; the attempt counts as a failed login but is
// logged only at DEBUG (the lockout itself was logged once).
func (s *session) refuseLocked() reply {
	s.srv.failed.Add(1)
	s.log.Debug("login refused, locked out", "user", hclog.Quote(s.user))
	return fail(lockedOut)
}

func cmdHelp(_ context.Context, s *session, _ string) reply {
	set := phaseMain
	if s.phase&phasesAuthorization != 0 {
		set = phasesAuthorization
	}
	return multi("Sending help...", commands.helpLines(set))
}

func cmdExit(_ context.Context, s *session, _ string) reply {
	s.closing = true
	return ok("Done")
}
