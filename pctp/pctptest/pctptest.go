// Package pctptest runs golden PCTP transcripts against a live server, the
// in-package tests' fake one or the real proxy.
//
// A transcript is a text file of lines:
//
//	# a comment (kept by -update); blank lines are kept too
//	C: STATS                     a command, sent as is with LF
//	S: +OK Sending stats...      a reply line the server must send, byte for byte
//	S:                           the empty line that ends a multi-line reply
//	S~ current_connections: \d+  a reply line matching a regular expression (anchored)
//	--                           close the connection and open a new one
//
// The S lines after a C line are the whole reply: the runner reads the
// reply with pctp.Client, which knows the framing from the command
// registry, and compares line by line. With update set, the runner rewrites
// the file with the replies it got, keeping every S~ block that still
// matched.
//
// Against the real proxy, LOGS lines carry real times, ports and byte
// counts, and STATS real counters: write those with S~ patterns (or leave
// them out); the fake Admin of pctp's own tests uses fixed values.
package pctptest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/pctp"
)

type kind int

const (
	other kind = iota // comment or blank
	send
	expect
	pattern
	reconnect
)

type line struct {
	kind kind
	text string // after the prefix
	raw  string
	no   int
	re   *regexp.Regexp
}

// exchange is one command and the reply lines expected after it.
type exchange struct {
	cmd   line
	reply []line
}

// RunTranscript plays the transcript file against the PCTP server at addr
// and reports every difference through t. With update, it rewrites file
// from the server's replies instead of failing on a difference.
func RunTranscript(t testing.TB, addr, file string, update bool) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("transcript: %v", err)
	}
	lines, err := parse(string(data))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	dial := func() *pctp.Client {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pctp.Dial(ctx, addr)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		c.Timeout = 20 * time.Second
		return c
	}
	c := dial()
	defer func() { c.Close() }()

	var out bytes.Buffer
	for i := 0; i < len(lines); {
		l := lines[i]
		i++
		switch l.kind {
		case other:
			out.WriteString(l.raw + "\n")
			continue
		case reconnect:
			out.WriteString(l.raw + "\n")
			c.Close()
			c = dial()
			continue
		case expect, pattern:
			t.Fatalf("%s:%d: reply line without a command before it", file, l.no)
		}
		ex := exchange{cmd: l}
		for i < len(lines) && (lines[i].kind == expect || lines[i].kind == pattern) {
			ex.reply = append(ex.reply, lines[i])
			i++
		}
		out.WriteString(l.raw + "\n")
		got := do(t, c, file, l)
		if diff := compare(ex.reply, got); diff != "" {
			if !update {
				t.Errorf("%s:%d: C: %s\n%s", file, l.no, printable(l.text), diff)
			}
			for _, g := range got {
				out.WriteString(format(g) + "\n")
			}
			continue
		}
		for _, r := range ex.reply {
			out.WriteString(r.raw + "\n")
		}
	}
	if update && !bytes.Equal(out.Bytes(), data) {
		if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
			t.Fatalf("transcript: %v", err)
		}
		t.Logf("%s: updated", file)
	}
}

// do sends one command and returns the reply's lines as on the wire (the
// empty terminator included). A closed connection yields no lines.
func do(t testing.TB, c *pctp.Client, file string, l line) []string {
	t.Helper()
	r, err := c.Do(l.text)
	if err != nil {
		t.Errorf("%s:%d: C: %s: %v", file, l.no, printable(l.text), err)
		return nil
	}
	return strings.Split(strings.TrimSuffix(r.String(), "\n"), "\n")
}

func compare(want []line, got []string) string {
	var b strings.Builder
	n := max(len(want), len(got))
	bad := false
	for i := range n {
		var w, g string
		ok := false
		switch {
		case i < len(want) && i < len(got):
			w, g = want[i].raw, format(got[i])
			if want[i].kind == pattern {
				ok = want[i].re.MatchString(got[i])
			} else {
				ok = want[i].text == got[i]
			}
		case i < len(want):
			w, g = want[i].raw, "(nothing)"
		default:
			w, g = "(nothing)", format(got[i])
		}
		if !ok {
			bad = true
			fmt.Fprintf(&b, "  line %d:\n    want %s\n    got  %s\n", i+1, printable(w), printable(g))
		}
	}
	if !bad {
		return ""
	}
	return b.String()
}

// format writes a reply line as an S: line.
func format(s string) string {
	if s == "" {
		return "S:"
	}
	return "S: " + s
}

// printable quotes a line if it holds control characters (but TAB).
func printable(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func parse(text string) ([]line, error) {
	text = strings.TrimSuffix(text, "\n")
	var out []line
	for i, raw := range strings.Split(text, "\n") {
		l := line{raw: raw, no: i + 1}
		switch {
		case raw == "--":
			l.kind = reconnect
		case raw == "C:" || strings.HasPrefix(raw, "C: "):
			l.kind, l.text = send, strings.TrimPrefix(strings.TrimPrefix(raw, "C:"), " ")
		case raw == "S:" || raw == "S: ":
			l.kind = expect
		case strings.HasPrefix(raw, "S: "):
			l.kind, l.text = expect, raw[len("S: "):]
		case strings.HasPrefix(raw, "S~ "):
			re, err := regexp.Compile("^(?:" + raw[len("S~ "):] + ")$")
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
			l.kind, l.text, l.re = pattern, raw[len("S~ "):], re
		case raw == "" || strings.HasPrefix(raw, "#"):
			l.kind = other
		default:
			return nil, fmt.Errorf("line %d: want C:, S:, S~, --, # or a blank line: %q", i+1, raw)
		}
		out = append(out, l)
	}
	return out, nil
}
