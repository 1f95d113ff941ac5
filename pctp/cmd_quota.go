package pctp

import (
	"context"
	"fmt"
	"strings"

	"github.com/socks5d/socks5d/middleware"
)

const badQuota = "Expected QUOTA or QUOTA RESET <name>"

func quotaCommands() []*command {
	return []*command{{
		keywords: []string{"QUOTA"},
		phases:   phaseMain,
		arg:      argOptional,
		validate: validQuotaArg,
		reply:    replyMultiIfNoArgs,
		usage:    "QUOTA [RESET <name>]",
		help:     "Traffic quota use this period: user used= limit= period= resets=; or reset a user's",
		handle:   cmdQuota,
	}}
}

func validQuotaArg(arg string) string {
	verb, name, _ := strings.Cut(arg, " ")
	if !strings.EqualFold(verb, "RESET") || validName(name) != "" {
		return badQuota
	}
	return ""
}

// FormatQuota formats one user's quota as a QUOTA line:
//
//	<user> used=<bytes> limit=<bytes> period=<id> resets=<time>|never
//
// The user is escaped like LOGS fields; the time is UTC (LogTimeFormat).
func FormatQuota(q middleware.QuotaUsage) string {
	resets := "never"
	if !q.Resets.IsZero() {
		resets = q.Resets.UTC().Format(LogTimeFormat)
	}
	return fmt.Sprintf("%s used=%d limit=%d period=%s resets=%s", field(q.User), q.Used, q.Limit, field(q.Period), resets)
}

func cmdQuota(_ context.Context, s *session, arg string) reply {
	if arg != "" {
		_, name, _ := strings.Cut(arg, " ")
		found, err := s.srv.Admin.ResetQuota(name)
		switch {
		case err != nil:
			return fail("Quota not reset: " + err.Error())
		case !found:
			return fail("No quota count for user " + name)
		}
		s.log.Info("quota reset", "user", name)
		return ok("Quota of " + name + " reset")
	}
	list, has := s.srv.Admin.Quotas()
	if !has {
		return fail("No quota stage in the chain")
	}
	lines := make([]string, len(list))
	for i, q := range list {
		lines[i] = FormatQuota(q)
	}
	return multi("Sending quotas...", lines)
}
