package pctp

import (
	"context"
	"strconv"
	"strings"
)

// RulesSetting is the list setting RULES and RULE edit: the rules of the
// stage named "filter" (the destination policy).
const RulesSetting = "filter.rules"

const badRule = "Expected RULE ADD [<n>] <rule> or RULE DEL <n>"

func ruleCommands() []*command {
	return []*command{{
		keywords: []string{"RULES"},
		phases:   phaseMain,
		arg:      argNone,
		reply:    replyMulti,
		usage:    "RULES",
		help:     "The destination policy's rules, numbered, first match wins",
		handle:   cmdRules,
	}, {
		keywords: []string{"RULE"},
		phases:   phaseMain,
		arg:      argRequired,
		validate: validRule,
		usage:    "RULE ADD [<n>] <rule>|DEL <n>",
		help:     "Insert a rule (as number n, default last), or delete rule n",
		handle:   cmdRule,
	}}
}

func cmdRules(_ context.Context, s *session, _ string) reply {
	items, err := s.srv.Admin.Items(RulesSetting)
	if err != nil {
		return fail("No destination policy in the chain (add a filter stage)")
	}
	lines := make([]string, len(items))
	for i, it := range items {
		lines[i] = strconv.Itoa(i+1) + " " + it
	}
	return multi("Sending rules...", lines)
}

// parseRule splits RULE's argument: the verb, the position (0 when none
// was given) and the rule text.
func parseRule(arg string) (verb string, n int, text string, ok bool) {
	verb, rest, _ := strings.Cut(arg, " ")
	verb = strings.ToUpper(verb)
	first, after, _ := strings.Cut(rest, " ")
	num, err := strconv.Atoi(first)
	switch {
	case verb == "DEL":
		return verb, num, "", err == nil && num > 0 && after == ""
	case verb == "ADD" && err == nil:
		return verb, num, after, num > 0 && after != ""
	case verb == "ADD":
		return verb, 0, rest, rest != ""
	}
	return "", 0, "", false
}

func validRule(arg string) string {
	if _, _, _, ok := parseRule(arg); !ok {
		return badRule
	}
	return ""
}

func cmdRule(_ context.Context, s *session, arg string) reply {
	verb, n, text, _ := parseRule(arg) // validated
	admin := s.srv.Admin
	if verb == "DEL" {
		if err := admin.DeleteItem(RulesSetting, n); err != nil {
			return fail("Cannot delete rule " + strconv.Itoa(n) + ": " + err.Error())
		}
		s.log.Info("rule deleted", "position", n)
		return ok("Deleted rule " + strconv.Itoa(n))
	}
	if err := admin.InsertItem(RulesSetting, n, text); err != nil {
		return fail("Cannot add rule: " + err.Error())
	}
	pos := "last"
	if n > 0 {
		pos = strconv.Itoa(n)
	}
	s.log.Info("rule added", "position", pos, "rule", text)
	return ok("Added rule")
}
