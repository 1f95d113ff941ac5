package main

// The top view's screen, as a pure function of two samples and a size.

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// sample is what one refresh read: STATS, SESSIONS and STATS USER for some
// users, all over one round trip.
type sample struct {
	at       time.Time
	stats    map[string]int64
	sessions []sessionLine
	// users holds the STATS USER replies by user name; a user the server
	// keeps no numbers for is absent.
	users map[string]map[string]int64
}

// sessionLine is one parsed SESSIONS line.
type sessionLine struct {
	id           uint64
	user, client string // as the server escaped them; "-" when none
	dest         string
	up, down     int64
	rate         int64 // bytes per second, as the server measured it
}

// screen is what the view shows above the samples: where it looks and
// how often.
type screen struct {
	server   string // host:port
	user     string
	interval time.Duration
	width    int
	height   int
}

// rateOf is the per-second change of a STATS counter between two samples,
// and whether both had it.
func rateOf(prev, cur *sample, key string) (float64, bool) {
	if prev == nil {
		return 0, false
	}
	a, okA := prev.stats[key]
	b, okB := cur.stats[key]
	dt := cur.at.Sub(prev.at).Seconds()
	if !okA || !okB || dt <= 0 || b < a { // a counter going back: the server restarted
		return 0, false
	}
	return float64(b-a) / dt, true
}

// busy is one row of a busiest-users or busiest-destinations table.
type busy struct {
	name     string
	rate     int64
	sessions int
	up, down int64 // bytes of the open sessions
}

// busiest groups sessions by key and sorts the groups by current rate,
// then by open sessions, then by name.
func busiest(sessions []sessionLine, key func(sessionLine) string) []busy {
	idx := map[string]int{}
	var out []busy
	for _, s := range sessions {
		k := key(s)
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, busy{name: k})
		}
		out[i].rate += s.rate
		out[i].sessions++
		out[i].up += s.up
		out[i].down += s.down
	}
	slices.SortFunc(out, func(a, b busy) int {
		if c := cmp.Compare(b.rate, a.rate); c != 0 {
			return c
		}
		if c := cmp.Compare(b.sessions, a.sessions); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

func userOf(s sessionLine) string { return s.user }
func destOf(s sessionLine) string { return s.dest }

// render draws one screen of at most sc.height lines, none wider than
// sc.width runes, from the latest sample and the one before it (nil on
// the first refresh: rates then show "-").
func render(prev, cur *sample, sc screen) string {
	w, h := max(sc.width, 1), max(sc.height, 1)
	var lines []string
	add := func(format string, a ...any) { lines = append(lines, fmt.Sprintf(format, a...)) }

	add("socks5d %s as %s · every %s · %s UTC · q quits", sc.server, sc.user, sc.interval, cur.at.UTC().Format("15:04:05"))
	st := cur.stats
	stat := func(key string) string {
		if v, ok := st[key]; ok {
			return count(v)
		}
		return "n/a"
	}
	perSec := func(key string, f func(float64) string) string { // "n/a" without the key
		if _, ok := st[key]; !ok {
			return "n/a"
		}
		if r, ok := rateOf(prev, cur, key); ok {
			return f(r) + "/s"
		}
		return "-/s"
	}
	add("Connections  open %s   new %s   total %s", stat("current_connections"), perSec("total_connections", decimal), stat("total_connections"))
	if _, ok := st["bytes_up_total"]; ok {
		add("Traffic      up %s   down %s   total up %s down %s", perSec("bytes_up_total", bytesF), perSec("bytes_down_total", bytesF),
			bytesOr(st, "bytes_up_total"), bytesOr(st, "bytes_down_total"))
	} else { // no metrics stage: both directions together
		add("Traffic      %s both ways (no metrics stage: no split)   total %s", perSec("total_bytes_proxied", bytesF), bytesOr(st, "total_bytes_proxied"))
	}
	auth := fmt.Sprintf("Auth         failed %s (total %s)   bans %s, now %s", perSec("failed_auths", decimal), stat("failed_auths"),
		stat("auth_bans"), stat("auth_banned_now"))
	if _, ok := st["pctp_failed_logins"]; ok {
		auth += "   PCTP failed " + stat("pctp_failed_logins")
	}
	if _, ok := st["pctp_lockouts"]; ok {
		auth += ", lockouts " + stat("pctp_lockouts")
	}
	add("%s", auth)
	if n, ok := st["connect_latency_ms.count"]; ok && n == 0 {
		add("Latency      connect p50 - p99 - (no dial timed yet)")
	} else if _, ok := st["connect_latency_ms.p50"]; ok {
		add("Latency      connect p50 %s ms   p99 %s ms   (since start, %s dials)", stat("connect_latency_ms.p50"), stat("connect_latency_ms.p99"), stat("connect_latency_ms.count"))
	} else {
		add("Latency      n/a (no metrics stage in the chain)")
	}
	refused := int64(0)
	for _, k := range []string{"limit_refused_total", "limit_refused_per_ip", "limit_refused_per_user"} {
		refused += st[k]
	}
	add("Refused      by limits %s   log records dropped %s   panics %s", count(refused), stat("log_dropped"), stat("panics_recovered"))
	lines = append(lines, "")

	// The two tables share what is left, users first.
	rows := h - len(lines) - 3 // two column heads and a spacer
	userRows := max((rows+1)/2, 0)
	destRows := max(rows-userRows, 0)

	users := busiest(cur.sessions, userOf)
	nameW := clamp(w-59, 8, 32) // the other columns take 59
	add("%-*s %11s %4s %8s %8s %11s %11s", nameW, "USER", "RATE", "OPEN", "CONNS", "FAILS", "UP", "DOWN")
	for i, u := range users {
		if i == userRows {
			break
		}
		conns, fails, up, down := "-", "-", "-", "-"
		if us, ok := cur.users[u.name]; ok { // the ended connections', plus the open ones' bytes
			conns, fails = count(us["connections"]), count(us["failures"])
			up, down = bytesF(float64(us["bytes_up"]+u.up)), bytesF(float64(us["bytes_down"]+u.down))
		}
		add("%-*s %11s %4d %8s %8s %11s %11s", nameW, fit(u.name, nameW), bytesF(float64(u.rate))+"/s", u.sessions, conns, fails, up, down)
	}
	if len(users) == 0 && userRows > 0 {
		add("(no open sessions)")
	}
	lines = append(lines, "")
	destW := clamp(w-17, 8, 60)
	add("%-*s %11s %4s", destW, "DESTINATION", "RATE", "OPEN")
	for i, d := range busiest(cur.sessions, destOf) {
		if i == destRows {
			break
		}
		add("%-*s %11s %4d", destW, fit(d.name, destW), bytesF(float64(d.rate))+"/s", d.sessions)
	}

	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		lines[i] = fit(strings.TrimRight(l, " "), w)
	}
	return strings.Join(lines, "\n") + "\n"
}

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }

// fit cuts s to at most w runes, marking a cut with "…".
func fit(s string, w int) string {
	if utf8.RuneCountInString(s) <= w {
		return s
	}
	r := []rune(s)
	if w <= 1 {
		return string(r[:w])
	}
	return string(r[:w-1]) + "…"
}

// count formats an integer with thousands separators.
func count(v int64) string {
	s := strconv.FormatInt(v, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// decimal formats a per-second figure with one decimal.
func decimal(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// bytesF formats a byte count in IEC units: 512 B, 1.5 KiB, 20.0 MiB.
func bytesF(v float64) string {
	if v < 1024 {
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	u := -1
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[u]
}

func bytesOr(st map[string]int64, key string) string {
	if v, ok := st[key]; ok {
		return bytesF(float64(v))
	}
	return "n/a"
}
