package quota_test

import (
	"os"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/socks5d/socks5d/builtin/quota"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// Every quota entry of the README's YAML blocks builds.
func TestReadmeExamplesBuild(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(data, -1)
	built := 0
	for _, b := range blocks {
		var doc struct {
			Chain []map[string]any `yaml:"chain"`
		}
		if err := yaml.Unmarshal(b[1], &doc); err != nil {
			t.Fatalf("README block does not parse: %v\n%s", err, b[1])
		}
		for _, entry := range doc.Chain {
			if entry["use"] != quota.Type {
				continue
			}
			name := quota.Type
			if n, ok := entry["name"].(string); ok {
				name = n
			}
			delete(entry, "use")
			delete(entry, "name")
			if _, err := mwtest.Build(t, quota.Type, mwtest.Params(name, entry)); err != nil {
				t.Errorf("README entry %v: %v", entry, err)
			}
			built++
		}
	}
	if built < 4 {
		t.Errorf("built %d quota entries from the README, want at least 4", built)
	}
}
