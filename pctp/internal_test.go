package pctp

import (
	"bytes"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

func TestParseLine(t *testing.T) {
	for in, want := range map[string]cmdLine{
		"STATS":             {keyword: "STATS"},
		"STATS ":            {keyword: "STATS"},
		"LOGS 3":            {keyword: "LOGS", arg: "3"},
		"PASS two words  x": {keyword: "PASS", arg: "two words  x"},
		"PASS  lead":        {keyword: "PASS", arg: " lead"},
		"":                  {},
		" x":                {arg: "x"},
	} {
		if got := parseLine(in); got != want {
			t.Errorf("parseLine(%q) = %#v, want %#v", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"stats": "STATS", "LoGs": "LOGS", "": "", "ST4TS": "", "ÉXIT": "",
		"ABCDEFGHIJKLMNOPQ": "", "\x00": "",
	} {
		if got := (cmdLine{keyword: in}).name(); got != want {
			t.Errorf("name(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseLine: parsing never panics, and parse → format → parse is stable.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"USER admin", "PASS password", "STATS", "LOGS 3", "LOGS", "CONFIG IO=8000",
		"CONFIG", "ADD BASIC", "ADD ADMIN", "USER newUser", "PASS newUserPass",
		"DEL newUser", "LIST", "EXIT", "HELP", "", " ", "PASS  x ", "\x00\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := parseLine(s)
		again := parseLine(l.String())
		if again != l {
			t.Fatalf("parse(%q) = %#v, format %q, parse again %#v", s, l, l.String(), again)
		}
		if !strings.HasSuffix(s, " ") && l.String() != s {
			t.Fatalf("format(parse(%q)) = %q", s, l.String())
		}
		if n := l.name(); n != "" && n != strings.ToUpper(l.keyword) {
			t.Fatalf("name(%q) = %q", l.keyword, n)
		}
		_ = commands.lookup(l)
		_ = ExpectsMultiline(s)
	})
}

// FuzzLineReader: whatever arrives, lines are never longer than the limit
// and never hold an LF.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("USER admin\r\nPASS password\n"), uint8(16))
	f.Add(bytes.Repeat([]byte("A"), 100), uint8(16))
	f.Add([]byte("\n\n\r\n\r\r\n"), uint8(20))
	f.Fuzz(func(t *testing.T, data []byte, max uint8) {
		m := int(max%64) + 14 // bufio's minimum buffer is 16
		r := newLineReader(bytes.NewReader(data), m)
		for range len(data) + 1 {
			line, tooLong, err := r.next()
			if err != nil {
				return
			}
			if tooLong && line != nil || len(line) > m || bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("line %q (tooLong %v) with max %d", line, tooLong, m)
			}
		}
		t.Fatal("reader did not reach EOF")
	})
}

// endless yields n bytes of 'A', then its tail.
type endless struct {
	n    int
	tail []byte
}

func (e *endless) Read(p []byte) (int, error) {
	if e.n == 0 {
		if len(e.tail) == 0 {
			return 0, io.EOF
		}
		k := copy(p, e.tail)
		e.tail = e.tail[k:]
		return k, nil
	}
	k := min(len(p), e.n)
	for i := range k {
		p[i] = 'A'
	}
	e.n -= k
	return k, nil
}

// TestLineReaderBounded reads a 64 MiB line through the reader: it is
// reported too long, the next line is intact, and the buffer never grew.
func TestLineReaderBounded(t *testing.T) {
	r := newLineReader(&endless{n: 64 << 20, tail: []byte("\nSTATS\r\n")}, MaxLine)
	if _, tooLong, err := r.next(); !tooLong || err != nil {
		t.Fatalf("tooLong = %v, err = %v", tooLong, err)
	}
	line, tooLong, err := r.next()
	if string(line) != "STATS" || tooLong || err != nil {
		t.Fatalf("next line = %q, %v, %v", line, tooLong, err)
	}
	if r.br.Size() != MaxLine+2 {
		t.Fatalf("buffer is %d octets", r.br.Size())
	}
	allocs := testing.AllocsPerRun(3, func() {
		r := newLineReader(&endless{n: 4 << 20, tail: []byte("\n")}, MaxLine)
		r.next()
		r.next()
	})
	if allocs > 10 {
		t.Fatalf("%v allocations for a 4 MiB line", allocs)
	}
}

func TestFormatRecord(t *testing.T) {
	at := time.Date(2025, 7, 13, 10, 55, 3, 0, time.FixedZone("ART", -3*3600))
	for _, tc := range []struct {
		r    middleware.Record
		want string
	}{{
		middleware.Record{Time: at, User: "alice", Client: netip.MustParseAddrPort("127.0.0.1:50514"),
			Target: middleware.Target{Addr: netip.MustParseAddr("34.145.113.24"), Port: 443}, ReplySent: true, Bytes: 15750, AuthState: middleware.AuthOK},
		"2025-07-13T13:55:03Z alice A 127.0.0.1 50514 34.145.113.24 443 0 15750 Auth",
	}, {
		// A domain with a space and an LF cannot split the line.
		middleware.Record{Time: at, Client: netip.MustParseAddrPort("[::ffff:10.1.2.3]:9"),
			Target: middleware.Target{Name: "evil host\nS: +OK", Port: 80}, Reply: middleware.ReplyNotAllowed, ReplySent: true, AuthState: middleware.AuthNoAuth},
		"2025-07-13T13:55:03Z - A 10.1.2.3 9 evil%20host%0AS:%20+OK 80 2 0 NoAuth",
	}, {
		middleware.Record{Time: at, User: "50% off", AuthState: middleware.AuthFailed},
		"2025-07-13T13:55:03Z 50%25%20off A - 0 - 0 1 0 Failed",
	}, {
		middleware.Record{Time: at, Client: netip.MustParseAddrPort("[2001:db8::1]:443"), Target: middleware.Target{Addr: netip.MustParseAddr("2001:db8::2"), Port: 8443}, ReplySent: true, Bytes: 1, AuthState: middleware.AuthNone},
		"2025-07-13T13:55:03Z - A 2001:db8::1 443 2001:db8::2 8443 0 1 Failed",
	}} {
		got := FormatRecord(tc.r)
		if got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
		if n := len(strings.Split(got, " ")); n != 10 {
			t.Errorf("%d fields in %q", n, got)
		}
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\r\nb\tc\x7f", 100); got != "a  b\tc " {
		t.Errorf("oneLine = %q", got)
	}
	if got := oneLine(strings.Repeat("é", 10), 5); got != "éé" {
		t.Errorf("truncate = %q", got)
	}
	if got := listName("tab\there"); got != "tab%09here" {
		t.Errorf("listName = %q", got)
	}
}

// TestRegistry: HELP lists exactly what the dispatcher accepts in each
// phase, every entry is complete, and keywords resolve.
func TestRegistry(t *testing.T) {
	for _, set := range []phase{phasesAuthorization, phaseMain} {
		lines := commands.helpLines(set)
		cmds := commands.valid(set)
		if len(lines) != len(cmds) || len(cmds) == 0 {
			t.Fatalf("phase %b: %d help lines for %d commands", set, len(lines), len(cmds))
		}
		for i, c := range cmds {
			kw := strings.Fields(lines[i])[0]
			if commands.lookup(parseLine(strings.ToLower(kw))) != c {
				t.Errorf("HELP line %q does not name its command", lines[i])
			}
		}
	}
	for _, kw := range Keywords() {
		if c := commands.lookup(cmdLine{keyword: kw}); c == nil || c.keywords[0] != kw {
			t.Errorf("keyword %q does not resolve", kw)
		}
	}
	want := "ADD CONFIG DEL EXIT HELP KILL LIST LOGS PASS QUOTA RULE RULES SESSIONS STATS USER"
	if got := strings.Join(Keywords(), " "); got != want {
		t.Errorf("Keywords = %s, want %s", got, want)
	}
	defer func() {
		if recover() == nil {
			t.Error("duplicate keyword did not panic")
		}
	}()
	newRegistry(userCommands(), userCommands())
}

func TestDefaultLoginDelay(t *testing.T) {
	want := []time.Duration{0, 0, 0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for n, w := range want {
		if got := DefaultLoginDelay(n); got != w {
			t.Errorf("DefaultLoginDelay(%d) = %v, want %v", n, got, w)
		}
	}
	if got := DefaultLoginDelay(1 << 40); got != 4*time.Second {
		t.Errorf("huge count: %v", got)
	}
}

// take is acquire reduced to whether the attempt was granted.
func (b *budget[K]) take(k K) bool {
	v, _ := b.acquire(k)
	return v == granted
}

func TestBudget(t *testing.T) {
	now := time.Unix(1e9, 0)
	b := newBudget[string](3, time.Minute, 5*time.Minute)
	b.now = func() time.Time { return now }
	fail := func(k string) time.Duration {
		t.Helper()
		if !b.take(k) {
			t.Fatalf("%s: refused with %d failures", k, b.failures(k))
		}
		return b.release(k, true, false)
	}
	// Attempts in flight count: three may be checked at once, not four.
	for range 3 {
		if !b.take("a") {
			t.Fatal("refused within the budget")
		}
	}
	v, wait := b.acquire("a")
	if v != busy {
		t.Fatalf("a fourth attempt in flight: %v, want busy", v)
	}
	select {
	case <-wait:
		t.Fatal("told to retry before any attempt ended")
	default:
	}
	// A success gives its attempt back (and resets when asked to), and
	// wakes whoever waits.
	b.release("a", false, false)
	select {
	case <-wait:
	default:
		t.Fatal("a release did not wake the waiting attempt")
	}
	b.release("a", false, false)
	b.release("a", false, false)
	if n := b.failures("a"); n != 0 {
		t.Fatalf("failures after successes = %d", n)
	}
	// The third failure locks out, for 1m, then 2m, then at most 5m.
	if d := fail("a") + fail("a"); d != 0 {
		t.Fatalf("locked out early: %v", d)
	}
	if d := fail("a"); d != time.Minute {
		t.Fatalf("first lockout %v, want 1m", d)
	}
	if v, _ := b.acquire("a"); v != locked || !b.take("b") {
		t.Fatal("lockout not held, or held for another key")
	}
	b.release("b", false, false)
	for _, want := range []time.Duration{2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		now = now.Add(10 * time.Minute) // the lockout is over: one more try
		if d := fail("a"); d != want {
			t.Fatalf("next lockout %v, want %v", d, want)
		}
	}
	// A success with reset forgets the failures, not the lockouts.
	now = now.Add(10 * time.Minute)
	b.take("a")
	b.release("a", false, true)
	if n := b.failures("a"); n != 0 {
		t.Fatalf("failures after a reset = %d", n)
	}
	// Keys are forgotten ttl after their last failure or lockout.
	fail("c")
	now = now.Add(trackerTTL + time.Second)
	if n := b.failures("c"); n != 0 {
		t.Fatalf("after ttl: failures = %d", n)
	}
}

func TestBudgetBounded(t *testing.T) {
	now := time.Unix(1e9, 0)
	b := newBudget[string](1, time.Minute, time.Minute)
	b.now = func() time.Time { return now }
	b.m.Max = 3
	b.take("locked")
	b.release("locked", true, false) // locked out for a minute
	for i := range 10 {
		now = now.Add(time.Second)
		k := string(rune('a' + i))
		if b.take(k) {
			b.release(k, false, false)
		}
		if b.len() > 3 {
			t.Fatalf("%d keys, max 3", b.len())
		}
	}
	if b.take("locked") {
		t.Fatal("a locked-out key was evicted before keys that were not")
	}
}

// TestLoginSource: IPv4 sources are /24s, IPv6 ones /64s.
func TestLoginSource(t *testing.T) {
	for a, want := range map[string]string{
		"127.0.1.1":            "127.0.1.0/24",
		"127.0.1.40":           "127.0.1.0/24",
		"::ffff:192.0.2.9":     "192.0.2.0/24",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
	} {
		if got := loginSource(netip.MustParseAddr(a)).String(); got != want {
			t.Errorf("loginSource(%s) = %s, want %s", a, got, want)
		}
	}
}
