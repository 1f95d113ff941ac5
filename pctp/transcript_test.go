package pctp_test

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socks5d/socks5d/pctp"
	"github.com/socks5d/socks5d/pctp/pctptest"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata from the server's replies")

// TestTranscripts plays every testdata/*.txt against a fresh server and
// fake Admin (admin/password).
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			addr := serve(t, &pctp.Server{})
			pctptest.RunTranscript(t, addr, file, *update)
		})
	}
}
