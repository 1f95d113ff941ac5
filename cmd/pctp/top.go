package main

// The top view: one round of commands per refresh over the logged-in
// session, drawn by render (topview.go) on the terminal (topterm.go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/socks5d/socks5d/pctp"
)

// defaultRefresh is how often top refreshes without -i.
const defaultRefresh = time.Second

// minRefresh bounds -i from below: each refresh is a round trip and three
// or more commands on the server.
const minRefresh = 100 * time.Millisecond

// maxUsersAsked bounds the STATS USER commands of one refresh.
const maxUsersAsked = 20

// errTop is the prefix of the errors the view reports.
var errTop = errors.New("top")

// topCommands is the round of one refresh: STATS, SESSIONS, and STATS USER
// for each of users (the busiest of the previous refresh, so that the
// round stays one round trip).
func topCommands(users []string) []string {
	cmds := []string{"STATS", "SESSIONS"}
	for _, u := range users {
		cmds = append(cmds, "STATS USER "+u)
	}
	return cmds
}

// fetch runs one round and parses it.
func fetch(c *pctp.Client, users []string) (*sample, error) {
	rs, err := c.Pipeline(topCommands(users)...)
	if err != nil {
		return nil, err
	}
	for i, kw := range []string{"STATS", "SESSIONS"} {
		if !rs[i].OK {
			return nil, fmt.Errorf("%w: %s: %s", errTop, kw, rs[i].Status)
		}
	}
	s := &sample{at: time.Now(), stats: parseStats(rs[0].Lines), users: map[string]map[string]int64{}}
	for _, l := range rs[1].Lines {
		if sl, ok := parseSession(l); ok {
			s.sessions = append(s.sessions, sl)
		}
	}
	for i, u := range users {
		if r := rs[2+i]; r.OK {
			s.users[escapeField(u)] = parseStats(r.Lines)
		}
	}
	return s, nil
}

// parseStats reads "key: value" lines; lines whose value is not an
// integer are left out.
func parseStats(lines []string) map[string]int64 {
	m := make(map[string]int64, len(lines))
	for _, l := range lines {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			m[k] = n
		}
	}
	return m
}

// parseSession reads one SESSIONS line (pctp.FormatSession):
//
//	<id> <user> <client> <destination> up=<B> down=<B> age=<s>s idle=<s>s rate=<B/s>
func parseSession(l string) (sessionLine, bool) {
	f := strings.Fields(l)
	if len(f) < 4 {
		return sessionLine{}, false
	}
	id, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return sessionLine{}, false
	}
	s := sessionLine{id: id, user: f[1], client: f[2], dest: f[3]}
	for _, kv := range f[4:] {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseInt(strings.TrimSuffix(v, "s"), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "up":
			s.up = n
		case "down":
			s.down = n
		case "rate":
			s.rate = n
		}
	}
	return s, true
}

// nextUsers are the users to ask STATS USER about in the next round: the
// busiest of this one, by their names as sent (SESSIONS escapes them).
func nextUsers(s *sample, n int) []string {
	var out []string
	for _, b := range busiest(s.sessions, userOf) {
		if len(out) == n {
			break
		}
		name, ok := unescapeField(b.name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") {
			continue // anonymous, or a name a command line cannot carry
		}
		out = append(out, name)
	}
	return out
}

// unescapeField undoes the %XX escaping of SESSIONS and LOGS fields; "-"
// is no value.
func unescapeField(s string) (string, bool) {
	if s == "-" {
		return "", true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), true
}

// escapeField escapes a name as SESSIONS does, so that STATS USER replies
// are found under the name the sessions show.
func escapeField(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// topOptions configure one run of the view.
type topOptions struct {
	interval time.Duration
	count    int // refreshes before it ends by itself; 0: until q
	server   string
	user     string
}

// display is where frames go: the terminal's alternate screen, or a plain
// stream of frames when stdout is not a terminal.
type display interface {
	size() (width, height int)
	draw(frame string) error
}

// topLoop refreshes every opt.interval until ctx ends, a quit key (q, Q,
// Ctrl-C) arrives on keys, or opt.count refreshes were shown. A redraw
// request (a window size change) redraws the last sample at the new size
// at once. Only one round is ever outstanding. When the view ends during a
// round, wait blocks until that round is over: the caller restores the
// terminal first, then waits before it uses the client again (or closes
// the client, which ends the round at once).
func topLoop(ctx context.Context, c *pctp.Client, d display, keys <-chan byte, redraw <-chan os.Signal, opt topOptions) (wait func(), err error) {
	var prev, cur *sample
	var users []string
	type result struct {
		s   *sample
		err error
	}
	results := make(chan result, 1)
	pending := false
	wait = func() {
		if pending {
			<-results
			pending = false
		}
	}
	start := func() {
		pending = true
		go func(users []string) {
			s, err := fetch(c, users)
			results <- result{s, err}
		}(users)
	}
	show := func() error {
		w, h := d.size()
		return d.draw(render(prev, cur, screen{server: opt.server, user: opt.user, interval: opt.interval, width: w, height: h}))
	}
	start()
	var tick <-chan time.Time
	shown := 0
	for {
		select {
		case <-ctx.Done():
			return wait, nil
		case k := <-keys:
			if k == 'q' || k == 'Q' || k == 3 { // 3: Ctrl-C in raw mode
				return wait, nil
			}
		case <-redraw:
			if cur != nil {
				if err := show(); err != nil {
					return wait, err
				}
			}
		case r := <-results:
			pending = false
			if r.err != nil {
				return wait, r.err
			}
			prev, cur = cur, r.s
			users = nextUsers(cur, maxUsersAsked)
			if err := show(); err != nil {
				return wait, err
			}
			if shown++; opt.count > 0 && shown >= opt.count {
				return wait, nil
			}
			tick = time.After(opt.interval)
		case <-tick:
			tick = nil
			start()
		}
	}
}

// streamDisplay writes frames one after the other, for a stdout that is
// not a terminal: a size from $COLUMNS and $LINES, else 100×40.
type streamDisplay struct {
	w       io.Writer
	started bool
}

func (d *streamDisplay) size() (int, int) {
	return envInt("COLUMNS", 100), envInt("LINES", 40)
}

func (d *streamDisplay) draw(frame string) error {
	sep := "\n"
	if !d.started {
		d.started, sep = true, ""
	}
	_, err := io.WriteString(d.w, sep+frame)
	return err
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// parseRefresh reads a refresh interval: a Go duration ("500ms", "2s") or
// a number of seconds ("2", "0.5").
func parseRefresh(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return 0, fmt.Errorf("%q: want a duration such as 1s or 500ms", s)
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < minRefresh {
		return 0, fmt.Errorf("%q: want at least %s", s, minRefresh)
	}
	return d, nil
}
