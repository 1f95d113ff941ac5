package pctp

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// phase is a set of session states, as a bit mask.
type phase uint8

// Session states. AUTHORIZATION and MAIN are PCTP.md's phases; the others
// are their sub-states.
const (
	phaseAuth     phase = 1 << iota // AUTHORIZATION, no USER yet
	phaseAuthPass                   // AUTHORIZATION, USER given, PASS expected
	phaseMain                       // MAIN
	phaseAddUser                    // MAIN, after ADD: USER expected
	phaseAddPass                    // MAIN, after ADD and USER: PASS expected

	phasesAuthorization = phaseAuth | phaseAuthPass
	phasesAdd           = phaseAddUser | phaseAddPass
	phasesAll           = phasesAuthorization | phaseMain | phasesAdd
)

// argShape says whether a command takes an argument.
type argShape uint8

const (
	argNone argShape = iota
	argRequired
	argOptional
)

// replyShape says when a command's +OK reply is multi-line. A -ERR reply is
// always one line.
type replyShape uint8

const (
	replySingle        replyShape = iota
	replyMulti                    // always multi-line
	replyMultiIfNoArgs            // multi-line when sent without argument
)

// command is one entry of the registry.
type command struct {
	keywords []string // upper case; the first is the one HELP shows
	phases   phase    // where it is valid
	arg      argShape
	// validate checks a present argument before the handler runs and
	// returns what is wrong with it (the text after "-ERR "), or "" when
	// it is fine. Nil accepts any argument.
	validate func(arg string) string
	reply    replyShape
	secret   bool   // the argument must never be logged (PASS)
	usage    string // e.g. "LOGS [N]"
	help     string // one line
	handle   func(ctx context.Context, s *session, arg string) reply
}

// multiline reports whether a +OK reply to c sent with line l is
// multi-line.
func (c *command) multiline(l cmdLine) bool {
	switch c.reply {
	case replyMulti:
		return true
	case replyMultiIfNoArgs:
		return !l.hasArg()
	}
	return false
}

// registry is the set of commands the server dispatches and HELP lists.
type registry struct {
	list      []*command
	byKeyword map[string]*command
}

// commands is the registry, built once during init from the command
// groups, one file each.
var commands *registry

func init() {
	commands = newRegistry(authCommands(), statsCommands(), configCommands(), userCommands(), liveCommands(), quotaCommands(), ruleCommands(), sessionCommands())
}

func newRegistry(groups ...[]*command) *registry {
	r := &registry{byKeyword: map[string]*command{}}
	for _, g := range groups {
		for _, c := range g {
			if len(c.keywords) == 0 || c.handle == nil || c.phases == 0 || c.usage == "" || c.help == "" {
				panic(fmt.Sprintf("pctp: incomplete command entry %q", c.keywords))
			}
			for _, k := range c.keywords {
				if k != strings.ToUpper(k) || (cmdLine{keyword: k}).name() != k {
					panic(fmt.Sprintf("pctp: bad keyword %q", k))
				}
				if _, dup := r.byKeyword[k]; dup {
					panic(fmt.Sprintf("pctp: keyword %q registered twice", k))
				}
				r.byKeyword[k] = c
			}
			r.list = append(r.list, c)
		}
	}
	return r
}

// lookup finds the command a line names, or nil.
func (r *registry) lookup(l cmdLine) *command {
	return r.byKeyword[l.name()]
}

// valid returns the commands valid in any state of set, in registry order.
func (r *registry) valid(set phase) []*command {
	var out []*command
	for _, c := range r.list {
		if c.phases&set != 0 {
			out = append(out, c)
		}
	}
	return out
}

// helpLines lists the commands valid in set, one per line: usage, padded,
// then the help text.
func (r *registry) helpLines(set phase) []string {
	cmds := r.valid(set)
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.usage))
	}
	lines := make([]string, 0, len(cmds))
	for _, c := range cmds {
		lines = append(lines, fmt.Sprintf("%-*s  %s", width, c.usage, c.help))
	}
	return lines
}

// ExpectsMultiline reports whether a +OK reply to the command line cmd is
// a multi-line reply, ended by an empty line. It uses the server's command
// registry, so a client never guesses from timing. A -ERR reply is always
// a single line.
func ExpectsMultiline(cmd string) bool {
	l := parseLine(cmd)
	if len(cmd) > MaxLine {
		return false // the server answers -ERR
	}
	c := commands.lookup(l)
	return c != nil && c.multiline(l)
}

// Keywords returns every command keyword the server knows, sorted (for
// completion in interactive clients).
func Keywords() []string {
	out := make([]string, 0, len(commands.byKeyword))
	for k := range commands.byKeyword {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
