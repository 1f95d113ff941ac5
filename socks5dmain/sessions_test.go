package socks5dmain

import (
	"io"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var sessionRE = regexp.MustCompile(`^\d+ alice \S+ \S+ up=(\d+) down=(\d+) age=\d+s idle=(\d+)s rate=(\d+) listener=socks$`)

// A transfer paced by the ratelimit stage far below the relay's buffer
// size (8 KiB/s against 32 KiB) moves a piece at a time, and SESSIONS
// follows the pieces: listing after listing shows a rate above 0 and no
// idle time, instead of one jump per relay buffer every four seconds.
func TestSessionsFollowPacedTransfer(t *testing.T) {
	cfg := writeConfig(t, "chain:\n  - use: auth\n  - use: ratelimit\n    per_connection: 8KiB\n    burst: 4096\n"+lcAliceConfig)
	s := startServer(t, append([]string{"-c", cfg, "-u", "admin:password"}, loopbackArgs...)...)
	target := newLCTarget(t, func(c net.Conn) { _, _ = c.Write(make([]byte, 1<<20)) })
	c, err := dialer(t, s.socks, "alice", "wonderland").Dial("tcp", target.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	go func() { _, _ = io.Copy(io.Discard, c) }()

	admin := login(t, s.pctpAddr(t))
	const want = 3 // listings in a row, 300 ms apart: pieces come every 100 ms
	inARow := 0
	var seen []string
	for range 30 {
		time.Sleep(300 * time.Millisecond)
		var line string
		for _, l := range do(t, admin, "SESSIONS").Lines {
			if sessionRE.MatchString(l) {
				line = l
			}
		}
		if line == "" {
			t.Fatalf("SESSIONS does not list alice's transfer: %q", seen)
		}
		seen = append(seen, line)
		m := sessionRE.FindStringSubmatch(line)
		down, _ := strconv.Atoi(m[2])
		idle, _ := strconv.Atoi(m[3])
		rate, _ := strconv.Atoi(m[4])
		if down > 0 && idle == 0 && rate > 0 {
			inARow++
		} else {
			inARow = 0
		}
		if inARow == want {
			return
		}
	}
	t.Fatalf("no %d listings in a row with rate > 0 and idle=0s:\n%q", want, seen)
}
