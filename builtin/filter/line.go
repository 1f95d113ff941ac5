package filter

import (
	"fmt"
	"strings"

	"github.com/socks5d/socks5d/builtin/internal/match"
)

// The one-line rule syntax, used by Items and ParseItem (PCTP's RULES and
// RULE ADD):
//
//	<allow|deny> [key=v1,v2,... ...]
//
// Fields are separated by spaces or tabs; keys are dest, ports, commands,
// users, roles, sources, each at most once, in any order, plus hits, which
// Items appends and ParseItem ignores. Values are separated by commas with
// no space. A value holding a space, a tab, a comma, a double quote, '=',
// '\' or a character outside printable ASCII is written as a Go
// double-quoted string ("bob smith"), and such a string is accepted for any
// value. Example:
//
//	deny dest=127.0.0.0/8,::1/128,localhost ports=1-1023 roles=basic hits=3

const keyHits = "hits"

// lineKeys are the keys a rule line may have, in the order errors name them.
var lineKeys = append(match.Keys[:len(match.Keys):len(match.Keys)], keyHits)

// formatRule writes a rule in the one-line syntax, without hits.
func formatRule(r *rule) string {
	var b strings.Builder
	b.WriteString(r.action)
	r.Lists.Format(&b)
	return b.String()
}

// parseLine reads a rule in the one-line syntax into the shape of a YAML
// rule entry (values are not validated here).
func parseLine(text string) (map[string]any, error) {
	action, fields, err := match.ParseLine(text, lineKeys)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRuleSyntax, err)
	}
	if action == "" {
		return nil, fmt.Errorf("%w: want <allow|deny> [key=value,... ...]", ErrRuleSyntax)
	}
	m := map[string]any{"action": action}
	for k, vals := range fields {
		if k != keyHits {
			m[k] = vals
		}
	}
	return m, nil
}
