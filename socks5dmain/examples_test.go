package socks5dmain

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/pctp"
)

// exampleModule is the module of examples/portguard: a server of its own
// (main.go: blank imports and Run) with a stage of its own.
func exampleModule(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join(lcPkgDir, "..", "examples", "portguard"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// goInExample runs the go command in the example module, offline: every
// module it needs must be in go.mod and go.sum already (GOFLAGS=-mod=readonly)
// and in the module cache (GOPROXY=off), as for a user who built socks5d once.
func goInExample(t *testing.T, args ...string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go tool to build the example module: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = exampleModule(t)
	cmd.Env = append(lcEnv(), "GOPROXY=off", "GOFLAGS=-mod=readonly", "GOWORK=off", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in examples/portguard: %v\n%s\n"+
			"(after a change of socks5d's go.mod, bring the example's up to date offline, from the repository root:\n"+
			"  cp go.sum examples/portguard/ && (cd examples/portguard && GOPROXY=off go mod tidy))",
			strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The example module builds, vets and passes its own tests offline, and
// the server it builds serves with its stage in the chain, from the
// module's own proxy.yaml: a CONNECT to a port off the allow list is
// refused, the list changes live over PCTP CONFIG, and the port is then
// reached, while STATS counts both.
func TestExampleModule(t *testing.T) {
	goInExample(t, "vet", "./...")
	t.Log(goInExample(t, "test", "-count=1", "./..."))
	bin := filepath.Join(t.TempDir(), "myproxy")
	goInExample(t, "build", "-o", bin, ".")

	// The config as shipped, in a directory of its own: the server keeps
	// its data beside it. Flags put the listeners on free loopback ports.
	cfg, err := os.ReadFile(filepath.Join(exampleModule(t), "proxy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "proxy.yaml"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	p := launchBinary(t, bin, dir, 0, "-c", "proxy.yaml", "-u", "admin:password")
	p.waitListening(t)
	if !strings.Contains(p.log.String(), "portguard") {
		t.Fatalf("portguard is not in the chain the server logged:\n%s", p.log)
	}
	admin := login(t, p.pctp)
	echo := lcEchoTarget(t)
	_, port, _ := strings.Cut(echo.addr(), ":")

	// Refused: the echo target's port is not on the shipped list.
	if err := lcRoundTrip(t, p.socks, "admin", "password", echo.addr()); err == nil {
		t.Fatalf("CONNECT to port %s went through; the list is [80, 443]", port)
	}
	echo.mu.Lock()
	seen := len(echo.conns)
	echo.mu.Unlock()
	if seen != 0 {
		t.Fatalf("the target saw %d connections after a refusal", seen)
	}

	// The list is a live setting: CONFIG lists it, changes it, lists it again.
	if got := configValue(t, admin, "portguard.allow"); got != "[80, 443]" {
		t.Fatalf("CONFIG lists portguard.allow: %q, want [80, 443]", got)
	}
	do(t, admin, "CONFIG portguard.allow=[80, 443, "+port+"]")
	if got, want := configValue(t, admin, "portguard.allow"), fmt.Sprintf("[80, 443, %s]", port); got != want {
		t.Fatalf("after CONFIG, portguard.allow: %q, want %q", got, want)
	}

	// Allowed now.
	if err := lcRoundTrip(t, p.socks, "admin", "password", echo.addr()); err != nil {
		t.Fatalf("CONNECT to port %s after adding it: %v", port, err)
	}

	// portguard counts as it dials; accounting counts replies when a
	// connection has ended, so wait (bounded) for the closed ones.
	want := map[string]int64{
		"portguard_allowed":      1,
		"portguard_refused":      1,
		"connections_by_reply.2": 1, // 0x02: not allowed by ruleset
		"connections_by_reply.0": 1,
	}
	var st map[string]int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st = stats(t, admin)
		if statsHave(st, want) || time.Now().After(deadline) {
			break
		}
	}
	if !statsHave(st, want) {
		t.Errorf("STATS: %v\nwant %v", st, want)
	}
}

// statsHave reports whether st holds every key of want with its value.
func statsHave(st, want map[string]int64) bool {
	for k, v := range want {
		if n, ok := st[k]; !ok || n != v {
			return false
		}
	}
	return true
}

// configValue is the value CONFIG lists for key.
func configValue(t *testing.T, c *pctp.Client, key string) string {
	t.Helper()
	lines := do(t, c, "CONFIG").Lines
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, key+": "); ok {
			return v
		}
	}
	t.Fatalf("CONFIG lists no %s:\n%s", key, strings.Join(lines, "\n"))
	return ""
}
