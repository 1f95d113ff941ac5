package pctp

import (
	"context"
	"strconv"
	"strings"

	"github.com/socks5d/socks5d/middleware"
)

// RULES and RULE list and edit a stage's rules list: the list a stage
// declares for middleware.PurposeRules. Without a stage name they edit the
// destination policy's (middleware.PurposePolicy: the filter stage's
// rules), so the forms without a name are the seed's:
//
//	RULES [<stage>]
//	RULE ADD [<stage>] [<n>] <rule>
//	RULE DEL [<stage>] <n>
//
// A first word that names a stage with a rules list is that stage; any
// other word starts the rule (a filter rule starts with allow or deny).

const badRule = "Expected RULE ADD [<n>] <rule> or RULE DEL <n>"

func ruleCommands() []*command {
	return []*command{{
		keywords: []string{"RULES"},
		phases:   phaseMain,
		arg:      argOptional,
		validate: validRules,
		reply:    replyMulti,
		usage:    "RULES [<stage>]",
		help:     "The destination policy's rules, or that stage's, numbered, first match wins",
		handle:   cmdRules,
	}, {
		keywords: []string{"RULE"},
		phases:   phaseMain,
		arg:      argRequired,
		validate: validRule,
		usage:    "RULE ADD [<n>] <rule>|DEL <n>",
		help:     "Insert a rule (as number n, default last), or delete rule n; ADD|DEL <stage> ... edits that stage's rules",
		handle:   cmdRule,
	}}
}

// badRules is the reply to RULES with more than a stage name.
const badRules = "Expected RULES or RULES <stage>"

func validRules(arg string) string {
	if strings.ContainsAny(arg, " \t") {
		return badRules
	}
	return ""
}

// rulesKey finds the list RULES and RULE edit: stage's rules, or the
// destination policy's when stage is "". The reply is the refusal when
// there is none.
func rulesKey(s *session, stage string) (string, reply, bool) {
	if stage == "" {
		key, err := s.srv.Admin.Purpose(middleware.PurposePolicy, "")
		if err != nil {
			return "", fail("No destination policy in the chain (add a filter stage)"), false
		}
		return key, reply{}, true
	}
	key, err := s.srv.Admin.Purpose(middleware.PurposeRules, stage)
	if err != nil {
		return "", fail("No rules list in stage " + strconv.Quote(stage)), false
	}
	return key, reply{}, true
}

func cmdRules(_ context.Context, s *session, stage string) reply {
	key, refusal, found := rulesKey(s, stage)
	if !found {
		return refusal
	}
	items, err := s.srv.Admin.Items(key)
	if err != nil {
		return fail("Cannot list rules: " + err.Error())
	}
	lines := make([]string, len(items))
	for i, it := range items {
		lines[i] = strconv.Itoa(i+1) + " " + it
	}
	return multi("Sending rules...", lines)
}

// ruleEdit is RULE's argument: the verb, the stage ("" when not named),
// the position (0 when none was given) and the rule text.
type ruleEdit struct {
	verb, stage string
	n           int
	text        string
}

// parseRule splits RULE's argument. isStage says whether a word names a
// stage with a rules list; validRule passes one that says no, since the
// shape it checks does not depend on it.
func parseRule(arg string, isStage func(string) bool) (ruleEdit, bool) {
	verb, rest, _ := strings.Cut(arg, " ")
	e := ruleEdit{verb: strings.ToUpper(verb)}
	first, after, _ := strings.Cut(rest, " ")
	if _, err := strconv.Atoi(first); err != nil && first != "" && isStage(first) {
		e.stage, rest = first, after
		first, after, _ = strings.Cut(rest, " ")
	}
	num, err := strconv.Atoi(first)
	switch {
	case e.verb == "DEL":
		e.n = num
		return e, err == nil && num > 0 && after == ""
	case e.verb == "ADD" && err == nil:
		e.n, e.text = num, after
		return e, num > 0 && after != ""
	case e.verb == "ADD":
		e.text = rest
		return e, rest != ""
	}
	return ruleEdit{}, false
}

func validRule(arg string) string {
	// DEL <stage> <n> has the shape of DEL <n> once the stage is known.
	anyWord := func(string) bool { return true }
	if _, ok := parseRule(arg, func(string) bool { return false }); ok {
		return ""
	}
	if e, ok := parseRule(arg, anyWord); ok && e.verb == "DEL" {
		return ""
	}
	return badRule
}

func cmdRule(_ context.Context, s *session, arg string) reply {
	admin := s.srv.Admin
	e, valid := parseRule(arg, func(w string) bool {
		_, err := admin.Purpose(middleware.PurposeRules, w)
		return err == nil
	})
	if !valid {
		return fail(badRule)
	}
	key, refusal, found := rulesKey(s, e.stage)
	if !found {
		return refusal
	}
	if e.verb == "DEL" {
		if err := admin.DeleteItem(key, e.n); err != nil {
			return fail("Cannot delete rule " + strconv.Itoa(e.n) + ": " + err.Error())
		}
		s.log.Info("rule deleted", "list", key, "position", e.n)
		return ok("Deleted rule " + strconv.Itoa(e.n))
	}
	if err := admin.InsertItem(key, e.n, e.text); err != nil {
		return fail("Cannot add rule: " + err.Error())
	}
	pos := "last"
	if e.n > 0 {
		pos = strconv.Itoa(e.n)
	}
	// The rule is logged as the stage lists it, never as typed: a stage
	// masks what must not be shown (an upstream's password).
	s.log.Info("rule added", "list", key, "position", pos, "rule", listed(admin, key, e.n))
	return ok("Added rule")
}

// listed returns item n (0: the last) of the list key as the stage lists
// it, or "" when it cannot be read back.
func listed(admin Admin, key string, n int) string {
	items, err := admin.Items(key)
	if err != nil || len(items) == 0 || n > len(items) {
		return ""
	}
	if n == 0 {
		n = len(items)
	}
	return items[n-1]
}
