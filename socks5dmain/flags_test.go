package socks5dmain

import (
	"context"
	"flag"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// -h lists every flag the server defines, each with its default.
func TestHelpListsEveryFlagWithDefault(t *testing.T) {
	code, stdout, stderr := lcRunBinary(t, "", "-h")
	if code != 0 || stdout != "" {
		t.Fatalf("-h: exit %d, stdout %q", code, stdout)
	}
	// flag.PrintDefaults lists every flag RunContext defines; these must be
	// all of them, each with its default.
	var names []string
	for _, name := range []string{"c", "l", "p", "L", "P", "d", "u", "t", "v", "version"} {
		names = append(names, name)
		if !regexp.MustCompile(`(?m)^  -` + name + `\b`).MatchString(stderr) {
			t.Errorf("-h does not list -%s:\n%s", name, stderr)
		}
	}
	// Every flag line's description says its default (or says it is the
	// same as another flag).
	blocks := regexp.MustCompile(`(?m)^  -(\w+)[^\n]*(?:\n    \t[^\n]*)?`).FindAllStringSubmatch(stderr, -1)
	seen := 0
	for _, b := range blocks {
		if b[1] == "h" {
			continue
		}
		seen++
		if !strings.Contains(b[0], "default") && !strings.Contains(b[0], "the same as -") {
			t.Errorf("-%s has no default in -h: %q", b[1], b[0])
		}
	}
	if seen != len(names) {
		t.Errorf("-h lists %d flags, want %d:\n%s", seen, len(names), stderr)
	}
	if !strings.Contains(stderr, "-h, --help") {
		t.Errorf("-h does not list itself:\n%s", stderr)
	}
}

// formatVersion prints the version and each build fact.
func TestFormatVersion(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/socks5d/socks5d", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "5a92b5f0c1d2e3f4"}, {Key: "vcs.time", Value: "2026-12-03T07:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	want := "socks5d v1.4.0\nmodule    github.com/socks5d/socks5d\nrevision  5a92b5f0c1d2e3f4 (2026-12-03T07:00:00Z, modified)\ngo        go1.26.8 linux/arm64\n"
	if got := formatVersion("v1.4.0", bi, true); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	bi.Settings = nil
	if got := formatVersion("dev", bi, true); !strings.Contains(got, "revision  unknown (built without VCS information)\n") ||
		!strings.Contains(got, "go        go1.26.8 "+runtime.GOOS+"/"+runtime.GOARCH+"\n") {
		t.Errorf("without VCS:\n%s", got)
	}
	if got := formatVersion("dev", nil, false); got != "socks5d dev\n(no build information in this binary)\n" {
		t.Errorf("without build info:\n%s", got)
	}
}

// A server built in a module of its own names that module, then socks5d's
// as required (and replaced); socks5d's version is the dependency's.
func TestFormatVersionOwnModule(t *testing.T) {
	goos := "go        go1.26.8 " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	for _, tc := range []struct {
		name string
		dep  *debug.Module
		want string
	}{
		{"released", &debug.Module{Path: "github.com/socks5d/socks5d", Version: "v1.4.0"},
			"socks5d v1.4.0\nmodule    example.com/portguard\nsocks5d   github.com/socks5d/socks5d v1.4.0\n"},
		{"replaced by a directory", &debug.Module{Path: "github.com/socks5d/socks5d", Version: "v0.0.0-00010101000000-000000000000",
			Replace: &debug.Module{Path: "../.."}},
			"socks5d dev\nmodule    example.com/portguard\nsocks5d   github.com/socks5d/socks5d v0.0.0-00010101000000-000000000000 => ../..\n"},
		{"not a dependency", nil, "socks5d dev\nmodule    example.com/portguard\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "example.com/portguard", Version: "v0.3.0"},
				Deps: []*debug.Module{{Path: "github.com/hashicorp/go-hclog", Version: "v1.6.3"}}}
			if tc.dep != nil {
				bi.Deps = append(bi.Deps, tc.dep)
			}
			want := tc.want + "revision  unknown (built without VCS information)\n" + goos
			if got := formatVersion(buildVersion("dev", bi, true), bi, true); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
	if got := buildVersion("v2.0.0", nil, false); got != "v2.0.0" {
		t.Errorf("a version set at build time: %q", got)
	}
}

// The real binary's -v and --version agree with what `go version -m`
// reads from it: module, revision (when VCS stamping was on) and Go.
func TestVersionFlag(t *testing.T) {
	code, v, _ := lcRunBinary(t, "", "-v")
	code2, v2, _ := lcRunBinary(t, "", "--version")
	if code != 0 || code2 != 0 || v != v2 {
		t.Fatalf("-v (exit %d) and --version (exit %d) differ:\n%s\n%s", code, code2, v, v2)
	}
	lines := strings.Split(strings.TrimSuffix(v, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "socks5d ") || lines[1] != "module    github.com/socks5d/socks5d" ||
		!strings.HasPrefix(lines[2], "revision  ") || !strings.HasPrefix(lines[3], "go        "+runtime.Version()+" ") {
		t.Fatalf("-v:\n%s", v)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to read the binary's build information")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "version", "-m", socks5dBinary(t)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`\tbuild\tvcs\.revision=(\S+)`).FindSubmatch(out); m != nil {
		if !strings.HasPrefix(lines[2], "revision  "+string(m[1])) {
			t.Errorf("-v says %q, the binary holds revision %s", lines[2], m[1])
		}
	} else if lines[2] != "revision  unknown (built without VCS information)" {
		t.Errorf("-v says %q for a binary without VCS information", lines[2])
	}
}

// flag's own rule, which -h relies on: a flag named in -h can be given
// with one dash or two.
func TestDoubleDashVersion(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	v := fs.Bool("version", false, "")
	if err := fs.Parse([]string{"--version"}); err != nil || !*v {
		t.Fatalf("--version: %v", err)
	}
}
