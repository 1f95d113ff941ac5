package pctp

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// docs/PCTP.md is the protocol reference: every command the registry
// dispatches has a section of its own there, and both HELP listings appear
// in it exactly as the server sends them, so the document cannot fall
// behind the registry.
func TestProtocolDocCoversRegistry(t *testing.T) {
	b, err := os.ReadFile("../docs/PCTP.md")
	if err != nil {
		t.Fatalf("the protocol reference is missing: %v", err)
	}
	doc := string(b)
	var headings []string
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "### ") {
			headings = append(headings, line)
		}
	}
	for _, kw := range Keywords() {
		word := regexp.MustCompile(`\b` + kw + `\b`)
		found := false
		for _, h := range headings {
			found = found || word.MatchString(h)
		}
		if !found {
			t.Errorf("docs/PCTP.md has no ### section for the command %s", kw)
		}
	}
	for name, set := range map[string]phase{"AUTHORIZATION": phasesAuthorization, "MAIN": phaseMain} {
		for _, line := range commands.helpLines(set) {
			if !strings.Contains(doc, "\nS: "+line+"\n") {
				t.Errorf("docs/PCTP.md lacks the %s HELP line %q", name, line)
			}
		}
	}
}
