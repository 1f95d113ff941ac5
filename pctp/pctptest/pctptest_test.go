package pctptest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// echoServer answers "+OK <n> <command>" to each line, and a multi-line
// reply to STATS; n counts connections, to see "--" reconnect.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for n := 1; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if sc.Text() == "STATS" {
						fmt.Fprintf(c, "+OK Sending stats...\ncurrent_connections: %d\n\n", n)
						continue
					}
					fmt.Fprintf(c, "+OK %d %s\n", n, sc.Text())
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// play runs text against a fresh echoServer.
func play(t *testing.T, text string, update bool) (*recorder, string) {
	addr := echoServer(t)
	file := filepath.Join(t.TempDir(), "t.txt")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunTranscript(rec, addr, file, update)
	}()
	<-done
	out, _ := os.ReadFile(file)
	return rec, string(out)
}

func TestRunTranscript(t *testing.T) {
	good := "# comment\nC: HELLO\nS: +OK 1 HELLO\n\nC: STATS\nS: +OK Sending stats...\nS~ current_connections: \\d+\nS:\n--\nC: AGAIN\nS: +OK 2 AGAIN\n"
	if rec, out := play(t, good, false); len(rec.errors) != 0 || out != good {
		t.Fatalf("good transcript: %q; file now %q", rec.errors, out)
	}
	bad := "C: HELLO\nS: +OK 1 BYE\nC: STATS\nS: +OK Sending stats...\nS:\n"
	rec, _ := play(t, bad, false)
	if len(rec.errors) != 2 || !strings.Contains(rec.errors[0], "want S: +OK 1 BYE") {
		t.Fatalf("bad transcript: %q", rec.errors)
	}
	// -update rewrites the S lines and keeps what matched.
	rec, out := play(t, "C: HELLO\nC: STATS\nS: +OK Sending stats...\nS~ current_connections: \\d+\nS:\n", true)
	want := "C: HELLO\nS: +OK 1 HELLO\nC: STATS\nS: +OK Sending stats...\nS~ current_connections: \\d+\nS:\n"
	if len(rec.errors) != 0 || out != want {
		t.Fatalf("update: %q; file now %q", rec.errors, out)
	}
	for _, broken := range []string{"S: +OK orphan\n", "X: what\n", "C: A\nS~ (\n"} {
		if rec, _ := play(t, broken, false); len(rec.errors) != 1 {
			t.Errorf("%q: %q", broken, rec.errors)
		}
	}
}
