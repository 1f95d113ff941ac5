package pctp

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/socks5d/socks5d/middleware"
)

// DefaultLogs is how many records LOGS sends without an argument.
const DefaultLogs = 100

// LogTimeFormat is the time format of LOGS lines (always UTC).
const LogTimeFormat = "2006-01-02T15:04:05Z"

// requiredStats are the STATS keys PCTP.md requires, first and in this
// order.
var requiredStats = [...]string{
	"current_connections",
	"total_connections",
	"current_bytes_proxied",
	"total_bytes_proxied",
}

const badLogsCount = "N must be a non-negative integer"

func statsCommands() []*command {
	return []*command{{
		keywords: []string{"STATS"},
		phases:   phaseMain,
		arg:      argOptional,
		validate: validStatsArg,
		reply:    replyMulti,
		usage:    "STATS [USER <name>]",
		help:     "This instance's statistics, or one user's",
		handle:   cmdStats,
	}, {
		keywords: []string{"LOGS"},
		phases:   phaseMain,
		arg:      argOptional,
		validate: validCount,
		reply:    replyMulti,
		usage:    "LOGS [N]",
		help:     "This instance's last N connection records, newest first (default 100)",
		handle:   cmdLogs,
	}}
}

const badStatsArg = "Expected STATS or STATS USER <name>"

func validStatsArg(arg string) string {
	verb, name, _ := strings.Cut(arg, " ")
	if !strings.EqualFold(verb, "USER") || validName(name) != "" {
		return badStatsArg
	}
	return ""
}

func cmdStats(_ context.Context, s *session, arg string) reply {
	if arg != "" {
		_, name, _ := strings.Cut(arg, " ")
		stats, ok := s.srv.Admin.UserStats(name)
		if !ok {
			return fail("No statistics for user " + name)
		}
		lines := make([]string, len(stats))
		for i, st := range stats {
			lines[i] = st.Key + ": " + strconv.FormatInt(st.Value, 10)
		}
		return multi("Sending stats...", lines)
	}
	stats := s.srv.Admin.Stats()
	lines := make([]string, 0, len(stats)+len(requiredStats))
	for _, k := range requiredStats {
		var v int64 // a required key the proxy lacks is shown as 0
		for _, st := range stats {
			if st.Key == k {
				v = st.Value
				break
			}
		}
		lines = append(lines, k+": "+strconv.FormatInt(v, 10))
	}
	for _, st := range stats {
		if slices.Contains(requiredStats[:], st.Key) || st.Key == "" {
			continue
		}
		lines = append(lines, st.Key+": "+strconv.FormatInt(st.Value, 10))
	}
	lines = append(lines,
		"pctp_failed_logins: "+strconv.FormatInt(s.srv.failed.Load(), 10),
		"pctp_lockouts: "+strconv.FormatInt(s.srv.lockouts.Load(), 10))
	return multi("Sending stats...", lines)
}

func validCount(arg string) string {
	if !allDigits(arg) {
		return badLogsCount
	}
	return ""
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func cmdLogs(_ context.Context, s *session, arg string) reply {
	n := DefaultLogs
	if arg != "" {
		var err error
		if n, err = strconv.Atoi(arg); err != nil {
			n = math.MaxInt // digits only, so out of range: "all of them"
		}
	}
	var recs []middleware.Record
	if n > 0 { // Records(0) would mean all
		recs = s.srv.Admin.Records(n)
	}
	if len(recs) > n {
		recs = recs[:n]
	}
	lines := make([]string, len(recs))
	for i, r := range recs {
		lines[i] = FormatRecord(r)
	}
	return multi("Sending logs...", lines)
}

// FormatRecord formats a connection record as a LOGS line: ten fields
// separated by single spaces,
//
//	<time> <user> A <client ip> <client port> <destination> <port> <reply> <bytes> <auth>
//
// The time is UTC (LogTimeFormat). A missing user, client or destination is
// "-". The reply code and the auth state keep to the values clients of
// version 1 parse: a connection that ended before any reply (a failed
// login, a broken handshake) shows 1 (general failure), and one that never
// got as far as choosing a method shows Failed. The user and the
// destination are the strings the client sent, with spaces, control
// characters and '%' escaped as %XX so they can never split a field or a
// line.
func FormatRecord(r middleware.Record) string {
	client, port := "-", "0"
	if r.Client.IsValid() {
		client = field(r.Client.Addr().Unmap().String())
		port = strconv.Itoa(int(r.Client.Port()))
	}
	code := strconv.Itoa(int(middleware.ReplyGeneralFailure))
	if r.ReplySent {
		code = strconv.Itoa(int(r.Reply))
	}
	auth := r.AuthState.String()
	if r.AuthState == middleware.AuthNone {
		auth = middleware.AuthFailed.String()
	}
	return strings.Join([]string{
		r.Time.UTC().Format(LogTimeFormat),
		field(r.User),
		"A",
		client,
		port,
		field(r.Target.Host()),
		strconv.Itoa(int(r.Target.Port)),
		code,
		strconv.FormatInt(r.Bytes, 10),
		auth,
	}, " ")
}
