package core

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestConnLoggerAddsFields(t *testing.T) {
	var buf bytes.Buffer
	base := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info})
	l := &connLogger{Logger: base, id: 42, client: netip.MustParseAddrPort("127.0.0.1:5000")}
	l.Debug("hidden")
	l.Info("shown", "k", "v")
	l.Named("sub").Warn("named")
	l.With("x", 1).Error("with")
	out := buf.String()
	if strings.Contains(out, "hidden") {
		t.Error("a DEBUG line was written at INFO")
	}
	for _, want := range []string{"shown: conn=42 client=127.0.0.1:5000 k=v", "sub: named: conn=42 client=127.0.0.1:5000", "with: ", "client=127.0.0.1:5000 conn=42 x=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
