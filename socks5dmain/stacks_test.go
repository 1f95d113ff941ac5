package socks5dmain

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestStackEnv(t *testing.T) {
	for _, c := range []struct {
		in    []string
		want  []string
		again bool
	}{
		{[]string{"A=1"}, []string{"A=1", "GODEBUG=adaptivestackstart=0"}, true},
		{[]string{"GODEBUG=", "B=2"}, []string{"GODEBUG=adaptivestackstart=0", "B=2"}, true},
		{[]string{"GODEBUG=gctrace=1"}, []string{"GODEBUG=gctrace=1,adaptivestackstart=0"}, true},
		// The operator's own setting wins, whatever its value.
		{[]string{"GODEBUG=adaptivestackstart=1"}, nil, false},
		{[]string{"GODEBUG=gctrace=1,adaptivestackstart=0"}, nil, false},
	} {
		in := slices.Clone(c.in)
		got, again := stackEnv(in)
		if again != c.again || !slices.Equal(got, c.want) {
			t.Errorf("stackEnv(%q) = %q, %v; want %q, %v", c.in, got, again, c.want, c.again)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("stackEnv changed its input to %q", in)
		}
	}
}

// TestBinaryRunsWithSmallStacks: the real binary re-executes itself with
// the setting (same PID, still serving), and keeps an operator's own.
func TestBinaryRunsWithSmallStacks(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/PID/environ")
	}
	godebug := func(p *lcProc) string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range strings.Split(string(b), "\x00") {
			if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
				return v
			}
		}
		return ""
	}
	t.Setenv("GODEBUG", "")
	if got := godebug(startLCProc(t, 0, "-u", "admin:secret")); got != smallStacks {
		t.Errorf("GODEBUG of the running server = %q, want %q", got, smallStacks)
	}
	t.Setenv("GODEBUG", "adaptivestackstart=1")
	if got := godebug(startLCProc(t, 0, "-u", "admin:secret")); got != "adaptivestackstart=1" {
		t.Errorf("GODEBUG of the running server = %q, want the operator's own", got)
	}
}
