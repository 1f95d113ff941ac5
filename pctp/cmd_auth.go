package pctp

import (
	"context"

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

func cmdPass(ctx context.Context, s *session, password string) reply {
	if s.phase == phaseAddPass {
		return s.addUserPass(password)
	}
	srv := s.srv
	// Slow down an address that keeps failing. The delay comes before the
	// check, so closing the connection early teaches an attacker nothing.
	sleep(ctx, srv.loginDelay(srv.fails.count(s.client)))
	if ctx.Err() != nil {
		return fail("Server shutting down")
	}
	role, good := srv.Admin.Login(s.user, password)
	if !good {
		srv.fails.fail(s.client)
		srv.failed.Add(1)
		// One stable line per failure, the same as the SOCKS side's, for
		// fail2ban; never the password.
		srv.log.Warn("authentication failed", "listener", "pctp", "client_ip", s.client.String(), "user", hclog.Quote(s.user))
		return fail("Invalid credentials")
	}
	if role != middleware.RoleAdmin {
		s.log.Info("login refused, not an ADMIN user", "name", s.user)
		return fail("Only ADMIN users may log in")
	}
	srv.fails.reset(s.client)
	s.setAdmin(s.user)
	s.user = ""
	s.phase = phaseMain
	s.log.Info("logged in")
	return ok("Successfully logged in")
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
