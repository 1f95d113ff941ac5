package socks5dmain

import (
	"os"
	"strings"
)

// smallStacks is the runtime setting the server runs with: every goroutine
// starts on Go's fixed 2 KiB stack instead of the average stack size the
// runtime saw at the last collection. Most of a proxy's goroutines are
// relay directions that wait with a shallow stack for the connection's
// whole life; with the adaptive start they would begin (and stay) at the
// 4 KiB the deeper connection goroutines pull the average up to. Measured
// with socks5-bench: 14.2 KiB of RSS per held connection with the adaptive
// start, 11.6 KiB without.
const smallStacks = "adaptivestackstart=0"

// stackEnv returns the environment to re-execute the server with so that
// it runs with smallStacks, and false when it already does, or when
// GODEBUG names adaptivestackstart (the operator's own choice wins).
func stackEnv(environ []string) ([]string, bool) {
	const key = "GODEBUG="
	for i, kv := range environ {
		if !strings.HasPrefix(kv, key) {
			continue
		}
		v := kv[len(key):]
		for _, f := range strings.Split(v, ",") {
			if name, _, _ := strings.Cut(f, "="); name == "adaptivestackstart" {
				return nil, false
			}
		}
		env := append([]string(nil), environ...)
		if v == "" {
			env[i] = key + smallStacks
		} else {
			env[i] = kv + "," + smallStacks
		}
		return env, true
	}
	return append(append([]string(nil), environ...), key+smallStacks), true
}

// withSmallStacks re-executes the running binary, same PID, arguments and
// descriptors, with smallStacks added to GODEBUG, which the runtime reads
// only as the process starts (it is not a //go:debug setting). If the
// exec is not possible it returns and the server runs as it is.
func withSmallStacks() {
	env, again := stackEnv(os.Environ())
	if !again {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	reexec(exe, os.Args, env)
}
