package socks5dmain

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set at build time with
// -ldflags "-X github.com/socks5d/socks5d/socks5dmain.version=...".
var version = "dev"

// modulePath is socks5d's module: the main module of cmd/socks5d, a
// dependency of a server of your own.
const modulePath = "github.com/socks5d/socks5d"

// socks5dModule returns socks5d's module in bi: the main module, or the
// dependency when the binary is a module of its own that requires socks5d;
// nil when it is neither.
func socks5dModule(bi *debug.BuildInfo) *debug.Module {
	if bi.Main.Path == modulePath {
		return &bi.Main
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			return d
		}
	}
	return nil
}

// buildVersion is socks5d's version: the one set at build time, else the
// module version Go recorded (none for a build from a work tree, or from a
// local replacement), else v.
func buildVersion(v string, bi *debug.BuildInfo, ok bool) string {
	if v != "dev" || !ok {
		return v
	}
	if m := socks5dModule(bi); m != nil && m.Replace == nil && m.Version != "" && m.Version != "(devel)" {
		return m.Version
	}
	return v
}

// versionText is what -v prints: the version, then the build facts Go
// recorded in the binary (runtime/debug): module, VCS revision, Go version.
//
//	socks5d v1.4.0
//	module    github.com/socks5d/socks5d
//	revision  5a92b5f0c1d2... (2026-12-03T07:00:00Z, modified)
//	go        go1.26.8 linux/amd64
//
// A server built in a module of its own (socks5dmain.Run) names that
// module, then socks5d's as it required it:
//
//	module    example.com/portguard
//	socks5d   github.com/socks5d/socks5d v1.4.0
func versionText() string {
	bi, ok := debug.ReadBuildInfo()
	return formatVersion(buildVersion(version, bi, ok), bi, ok)
}

// formatVersion is versionText for given build information.
func formatVersion(v string, bi *debug.BuildInfo, ok bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "socks5d %s\n", v)
	if !ok {
		b.WriteString("(no build information in this binary)\n")
		return b.String()
	}
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	fmt.Fprintf(&b, "module    %s\n", bi.Main.Path)
	if m := socks5dModule(bi); m != nil && m != &bi.Main {
		dep := m.Path + " " + m.Version
		if r := m.Replace; r != nil {
			dep += " => " + strings.TrimSpace(r.Path+" "+r.Version)
		}
		fmt.Fprintf(&b, "socks5d   %s\n", dep)
	}
	rev := "unknown (built without VCS information)"
	if r := set["vcs.revision"]; r != "" {
		var notes []string
		if t := set["vcs.time"]; t != "" {
			notes = append(notes, t)
		}
		if set["vcs.modified"] == "true" {
			notes = append(notes, "modified")
		}
		rev = r
		if len(notes) > 0 {
			rev += " (" + strings.Join(notes, ", ") + ")"
		}
	}
	fmt.Fprintf(&b, "revision  %s\n", rev)
	fmt.Fprintf(&b, "go        %s %s/%s\n", bi.GoVersion, cmp.Or(set["GOOS"], runtime.GOOS), cmp.Or(set["GOARCH"], runtime.GOARCH))
	return b.String()
}
