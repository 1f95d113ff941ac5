package pctp

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

const badKill = "Expected KILL <id> or KILL USER <name>"

func liveCommands() []*command {
	return []*command{{
		keywords: []string{"SESSIONS"},
		phases:   phaseMain,
		arg:      argNone,
		reply:    replyMulti,
		usage:    "SESSIONS",
		help:     "This instance's open connections: id user client destination up= down= age= idle= rate=",
		handle:   cmdSessions,
	}, {
		keywords: []string{"KILL"},
		phases:   phaseMain,
		arg:      argRequired,
		validate: validKill,
		usage:    "KILL <id>|USER <name>",
		help:     "Close a connection here, or a user's on every instance sharing the store",
		handle:   cmdKill,
	}}
}

// FormatSession formats an open connection as a SESSIONS line:
//
//	<id> <user> <client ip:port> <destination host:port> up=<bytes> down=<bytes> age=<s>s idle=<s>s rate=<bytes/s> [egress=<egress>] [listener=<name>]
//
// A missing user or destination is "-"; names are escaped like LOGS fields.
// egress= follows when an egress stage (forward) said which way the
// connection left: direct, bind=<ip>, interface=<name>, via=<url>,...;
// listener= names the listener that accepted the connection (left out
// when unknown).
func FormatSession(si middleware.SessionInfo, now time.Time) string {
	dest := "-"
	if si.Target.Port != 0 || si.Target.Host() != "" {
		dest = field(si.Target.String())
	}
	client := "-"
	if si.Client.IsValid() {
		client = si.Client.String()
	}
	line := fmt.Sprintf("%d %s %s %s up=%d down=%d age=%ds idle=%ds rate=%d",
		si.ID, field(si.User), client, dest, si.Up, si.Down,
		int64(now.Sub(si.Start).Seconds()), int64(now.Sub(si.Active).Seconds()), int64(si.Rate))
	if si.Egress != "" {
		line += " egress=" + field(si.Egress)
	}
	if si.Listener != "" {
		line += " listener=" + field(si.Listener)
	}
	return line
}

func cmdSessions(_ context.Context, s *session, _ string) reply {
	now := time.Now()
	list := s.srv.Admin.Sessions()
	lines := make([]string, len(list))
	for i, si := range list {
		lines[i] = FormatSession(si, now)
	}
	return multi("Sending sessions...", lines)
}

func validKill(arg string) string {
	if verb, name, ok := strings.Cut(arg, " "); ok {
		if strings.EqualFold(verb, "USER") && validName(name) == "" {
			return ""
		}
		return badKill
	}
	if _, err := strconv.ParseUint(arg, 10, 64); err != nil {
		return badKill
	}
	return ""
}

func cmdKill(_ context.Context, s *session, arg string) reply {
	if _, name, byUser := strings.Cut(arg, " "); byUser {
		n := s.srv.Admin.KillUser(name)
		s.log.Info("sessions killed", "user", name, "count", n)
		return ok(fmt.Sprintf("Killed %d session(s) of %s", n, name))
	}
	id, _ := strconv.ParseUint(arg, 10, 64) // validated
	if err := s.srv.Admin.Kill(id); err != nil {
		return fail("No open session " + arg)
	}
	s.log.Info("session killed", "session", id)
	return ok("Killed session " + arg)
}
