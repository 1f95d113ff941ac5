package pctp

import (
	"context"
	"errors"
	"strings"

	"github.com/socks5d/socks5d/middleware"
)

// Replies to invalid arguments.
const (
	badRole     = "Expected ADD ADMIN or ADD BASIC"
	badNameChar = "User name must not contain spaces or control characters"
	badNameText = "User name must be valid UTF-8 without control characters"
)

func userCommands() []*command {
	return []*command{{
		keywords: []string{"ADD"},
		phases:   phaseMain,
		arg:      argRequired,
		validate: validRole,
		usage:    "ADD ADMIN|BASIC",
		help:     "Add a user with that role (then USER and PASS)",
		handle:   cmdAdd,
	}, {
		keywords: []string{"DEL"},
		phases:   phaseMain,
		arg:      argRequired,
		validate: validName,
		usage:    "DEL <user>",
		help:     "Delete a user and close their sessions",
		handle:   cmdDel,
	}, {
		keywords: []string{"LIST"},
		phases:   phaseMain,
		arg:      argNone,
		reply:    replyMulti,
		usage:    "LIST",
		help:     "List the users and their roles",
		handle:   cmdList,
	}}
}

func validRole(arg string) string {
	if _, err := middleware.ParseRole(arg); err != nil {
		return badRole
	}
	return ""
}

// validNewName is stricter than validName: a new user's name must be one
// the store keeps exactly (middleware.CheckUserName, the rule the
// configuration's users follow too) and, typed over PCTP, print as one
// field in LOGS and LIST (no spaces).
func validNewName(name string) string {
	if problem := validName(name); problem != "" {
		return problem
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return badNameChar
	}
	if middleware.CheckUserName(name) != nil {
		return badNameText
	}
	return ""
}

func cmdAdd(_ context.Context, s *session, arg string) reply {
	role, _ := middleware.ParseRole(arg) // validated
	s.addRole = role
	s.phase = phaseAddUser
	return ok("Please provide new user credentials")
}

// addUserName is USER in the middle of ADD.
func (s *session) addUserName(name string) reply {
	if problem := validNewName(name); problem != "" {
		return fail(problem)
	}
	if _, exists := s.findUser(name); exists {
		return fail("User already exists")
	}
	s.addName = name
	s.phase = phaseAddPass
	return ok("Please send password")
}

// addUserPass is PASS in the middle of ADD: it ends the dialogue.
func (s *session) addUserPass(password string) reply {
	name, role := s.addName, s.addRole
	s.addName, s.phase = "", phaseMain
	if err := s.srv.Admin.AddUser(name, password, role); err != nil {
		return fail("Cannot add user: " + err.Error())
	}
	s.log.Info("user added", "user", name, "role", role.String())
	return ok("Successfully added user")
}

func (s *session) findUser(name string) (middleware.User, bool) {
	for _, u := range s.srv.Admin.Users() {
		if u.Name == name {
			return u, true
		}
	}
	return middleware.User{}, false
}

func cmdDel(_ context.Context, s *session, name string) reply {
	if _, found := s.findUser(name); !found {
		return fail("No such user")
	}
	// The Admin applies the last-ADMIN rule (middleware.CheckRemoval)
	// under its lock.
	if err := s.srv.Admin.DeleteUser(name); errors.Is(err, middleware.ErrLastAdmin) {
		return fail("Cannot delete the last ADMIN user")
	} else if err != nil {
		return fail("Cannot delete user: " + err.Error())
	}
	closed := s.srv.closeSessionsOf(name, s)
	if s.adminName() == name {
		s.closing = true // deleted themselves: this session ends too
	}
	s.log.Info("user deleted", "user", name, "admin_sessions_closed", closed)
	return ok("Successfully deleted user")
}

func cmdList(_ context.Context, s *session, _ string) reply {
	users := s.srv.Admin.Users()
	lines := make([]string, len(users))
	for i, u := range users {
		lines[i] = listName(u.Name) + "\t" + u.Role.String()
	}
	return multi("Sending user list...", lines)
}

// listName escapes control characters (TAB included) as %XX, so a name
// from the configuration file cannot break a LIST line.
func listName(name string) string {
	return escapeHex(name, func(r rune) bool { return r < ' ' || r == 0x7f })
}
