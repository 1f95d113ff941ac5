package core

import (
	"crypto/tls"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/socks5d/socks5d/middleware"
)

// DefaultListener is the name of the `socks:` listener, the one SOCKS5
// listener every configuration has.
const DefaultListener = "socks"

// Listener protocols (ListenerConfig.Protocol).
const (
	ProtoSOCKS5 = "socks5"
	ProtoHTTP   = "http"
	ProtoMixed  = "mixed" // SOCKS5 or HTTP, told apart by the first byte
)

// ListenerConfig is one entry of the `listeners:` list: a front door
// beside the `socks:` listener, with its own protocol, TLS and chain.
type ListenerConfig struct {
	// Name names the listener in SESSIONS, LOGS, the connection log,
	// STATS and metrics.
	Name    string `koanf:"name"`
	Address string `koanf:"address"`
	Port    int    `koanf:"port"`
	// Protocol is socks5 (the default), http or mixed.
	Protocol string `koanf:"protocol"`
	// TLS, when its files are set, wraps the listener in TLS (SOCKS over
	// TLS, an HTTPS proxy).
	TLS TLSFiles `koanf:"tls"`
	// Chain names a chain of `chains:`; empty: the main `chain:`.
	Chain string `koanf:"chain"`
}

// TLSFiles are a certificate (PEM, the chain leaf first) and its private
// key. Both empty: no TLS.
type TLSFiles struct {
	Cert string `koanf:"cert"`
	Key  string `koanf:"key"`
}

// Enabled reports whether TLS is configured.
func (f TLSFiles) Enabled() bool { return f.Cert != "" || f.Key != "" }

// check loads the pair once, so that a configuration check (-t) finds
// what start-up would; key names the section in errors.
func (f TLSFiles) check(key string) error {
	if !f.Enabled() {
		return nil
	}
	if f.Cert == "" || f.Key == "" {
		return keyError(key, "want both cert and key")
	}
	if _, err := tls.LoadX509KeyPair(f.Cert, f.Key); err != nil {
		return &KeyError{Key: key, Err: fmt.Errorf("%w: %w", ErrTLSFiles, err)}
	}
	return nil
}

// validListenerName: letters, digits, '-' and '_', as it appears in STATS
// keys and SESSIONS lines.
func validListenerName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// parseChains reads the `chains:` mapping: name → a list like `chain:`.
func parseChains(raw any) (map[string][]StageConfig, error) {
	if raw == nil {
		return nil, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: chains: want a mapping of name to a list of stages, got %s", ErrConfig, kindOf(raw))
	}
	out := make(map[string][]StageConfig, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if !validListenerName(name) {
			return nil, keyError("chains", "%q is not a chain name (letters, digits, - and _)", name)
		}
		c, err := parseChain("chains."+name, m[name])
		if err != nil {
			return nil, err
		}
		out[name] = c
	}
	return out, nil
}

// validateFrontDoors checks `listeners:`, `chains:` and pctp.tls: names
// unique, protocols known, chains that exist, TLS files that load.
func (c *Config) validateFrontDoors() error {
	seen := map[string]bool{DefaultListener: true}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		key := fmt.Sprintf("listeners[%d]", i)
		switch {
		case !validListenerName(l.Name):
			return keyError(key+".name", "want a name of letters, digits, - and _ (got %q)", l.Name)
		case seen[l.Name]:
			return keyError(key+".name", "%q is taken (%q is the socks: listener)", l.Name, DefaultListener)
		}
		seen[l.Name] = true
		switch strings.ToLower(l.Protocol) {
		case "", ProtoSOCKS5:
			l.Protocol = ProtoSOCKS5
		case ProtoHTTP, ProtoMixed:
			l.Protocol = strings.ToLower(l.Protocol)
		default:
			return keyError(key+".protocol", "want socks5, http or mixed, got %q", l.Protocol)
		}
		if l.Chain != "" {
			if _, ok := c.Chains[l.Chain]; !ok {
				return keyError(key+".chain", "no chain %q under chains: (known: %s)", l.Chain, strings.Join(slices.Sorted(maps.Keys(c.Chains)), ", "))
			}
		}
		if err := l.TLS.check(key + ".tls"); err != nil {
			return err
		}
	}
	return c.PCTP.TLS.check("pctp.tls")
}

// ListenerSpec is how a listener serves its connections (ServeListener).
type ListenerSpec struct {
	// Name names the listener (Session.Listener).
	Name string
	// Protocol is ProtoSOCKS5, ProtoHTTP or ProtoMixed.
	Protocol string
	// TLS, when not nil, is the TLS server configuration (see CertStore).
	TLS *tls.Config
	// Chain names a chain of `chains:`; empty: the main chain.
	Chain string
}

// Spec is the listener's serving specification, with tlsConfig (nil
// when the listener has no TLS).
func (l ListenerConfig) Spec(tlsConfig *tls.Config) ListenerSpec {
	return ListenerSpec{Name: l.Name, Protocol: l.Protocol, TLS: tlsConfig, Chain: l.Chain}
}

// compiledChain is a named chain of a snapshot.
type compiledChain struct {
	stages  []Stage
	handler middleware.Handler
}
