package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "a b  c", want: []string{"a", "b", "c"}},
		{in: "  lead\ttab\nnl  ", want: []string{"lead", "tab", "nl"}},
		{in: `-u '{user}:{pass}'`, want: []string{"-u", "{user}:{pass}"}},
		{in: `"a b" 'c d'`, want: []string{"a b", "c d"}},
		{in: `x"y z"w`, want: []string{"xy zw"}},
		{in: `a\ b`, want: []string{"a b"}},
		{in: `"q\"uote" "back\\slash" "keep\n"`, want: []string{`q"uote`, `back\slash`, `keep\n`}},
		{in: `'it''s'`, want: []string{"its"}},
		{in: `''`, want: []string{""}},
		{in: ``, want: nil},
		{in: `'open`, bad: true},
		{in: `"open`, bad: true},
		{in: `trailing\`, bad: true},
	} {
		got, err := splitWords(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("splitWords(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestExpandTemplate(t *testing.T) {
	vars := map[string]string{"port": "1080", "port2": "8081", "user": "u", "pass": "p w"}
	got, err := expandTemplate(`bin/socks5d -p {port} -P {port2} -u {user}:{pass} -x '{port}{port}'`, vars)
	want := []string{"bin/socks5d", "-p", "1080", "-P", "8081", "-u", "u:p w", "-x", "10801080"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("expandTemplate = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"", "   ", "microsocks -p 1080", "x '{port}"} {
		if got, err := expandTemplate(bad, vars); err == nil {
			t.Errorf("expandTemplate(%q) = %q, want an error", bad, got)
		}
	}
}

func TestServerName(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/microsocks -p {port}": "microsocks",
		"'./bin/socks 5d' -p {port}":    "socks 5d",
		"'unterminated":                 "server",
	} {
		if got := serverName(in); got != want {
			t.Errorf("serverName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	if rss, err := procStatusKiB(pid, "VmRSS"); err != nil || rss <= 0 {
		t.Errorf("VmRSS = %d, %v", rss, err)
	}
	if _, err := procStatusKiB(pid, "NoSuchField"); err == nil {
		t.Error("NoSuchField: no error")
	}
	if cpu, err := procCPUSeconds(pid); err != nil || cpu < 0 {
		t.Errorf("cpu = %v, %v", cpu, err)
	}
	if n, err := procFDs(pid); err != nil || n < 3 {
		t.Errorf("fds = %d, %v", n, err)
	}
	if n, err := procNofile(pid); err != nil || n == 0 {
		t.Errorf("nofile = %d, %v", n, err)
	}
}

func TestStartServerReportsItsOutput(t *testing.T) {
	ctx := context.Background()
	_, err := startServer(ctx, `sh -c 'echo boom-on-stderr >&2; exit 3' {port}`, "u", "p", "", 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "boom-on-stderr") || !strings.Contains(err.Error(), "exited before accepting") {
		t.Fatalf("err = %v; want the exit and its stderr", err)
	}
}

func TestStartServerKillsItsGroup(t *testing.T) {
	ctx := context.Background()
	// A shell that leaves a child behind and never listens: startServer
	// times out and must end the whole group, the child included.
	_, err := startServer(ctx, `sh -c 'sleep 30 & echo child=$!; wait' {port}`, "u", "p", "", 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not accept") {
		t.Fatalf("err = %v", err)
	}
	_, after, ok := strings.Cut(err.Error(), "child=")
	if !ok {
		t.Fatalf("no child pid in the captured output: %v", err)
	}
	pid, convErr := strconv.Atoi(strings.Fields(after)[0])
	if convErr != nil {
		t.Fatal(convErr)
	}
	for deadline := time.Now().Add(3 * time.Second); ; {
		st, readErr := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if readErr != nil || strings.Contains(string(st), ") Z ") {
			return // gone, or a zombie waiting for init
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the server's group still runs: %s", pid, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--server", "x {port}", "--short", "--held", "50"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.held != 50 || o.bulkBytes != 8<<20 || o.cycles != 200 || o.rtt != 500 || o.streams != 8 {
		t.Errorf("short with --held 50: %+v", o)
	}
	o, err = parseFlags([]string{"--server", "x {port}", "--bulk-bytes", "64M"}, io.Discard)
	if err != nil || o.bulkBytes != 64<<20 || o.held != 10000 || o.cyclesPar != 20000 {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	for _, bad := range [][]string{
		{},
		{"--server", "x", "extra"},
		{"--server", "x", "--streams", "0"},
		{"--server", "x", "--rtt-time", "0s"},
		{"--server", "x", "--held", "-1"},
		{"--server", "x", "--repeat", "0"},
		{"--server", "x", "--bulk-bytes", "lots"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): no error", bad)
		}
	}
}
