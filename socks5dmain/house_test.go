package socks5dmain

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// socks5dmain is the top of the house: in this module only cmd/ imports it
// (tests included), so the arrows stay cmd → socks5dmain → pctp, builtin,
// core → middleware.
func TestOnlyCmdImportsSocks5dmain(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go tool to list the imports: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "list", "-f",
		`{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, "./...")
	cmd.Dir = filepath.Join(lcPkgDir, "..")
	cmd.Env = append(lcEnv(), "GOFLAGS=-mod=readonly")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const self = modulePath + "/socks5dmain"
	var importers int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] == self {
			continue
		}
		for _, imp := range fields[1:] {
			if imp != self {
				continue
			}
			if !strings.HasPrefix(fields[0], modulePath+"/cmd/") {
				t.Errorf("%s imports socks5dmain; only cmd/ may", fields[0])
			}
			importers++
		}
	}
	if importers == 0 {
		t.Error("nothing imports socks5dmain: cmd/socks5d should")
	}
}
