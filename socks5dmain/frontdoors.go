package socks5dmain

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/core"
)

// frontDoors are the `listeners:` beside the `socks:` listener, and the
// TLS certificates of every listener and of PCTP, reloaded on SIGHUP.
type frontDoors struct {
	lns   []net.Listener
	specs []core.ListenerSpec
	// certs are the certificate stores, by the key that configured them.
	certs     []*core.CertStore
	certKeys  []string
	pctpCerts *core.CertStore
}

// openFrontDoors loads the certificates and opens the listeners of cfg.
// On error nothing stays open.
func openFrontDoors(ctx context.Context, cfg *core.Config) (*frontDoors, error) {
	f := &frontDoors{}
	if cfg.PCTP.TLS.Enabled() {
		cs, err := core.NewCertStore(cfg.PCTP.TLS)
		if err != nil {
			return nil, fmt.Errorf("pctp.tls: %w", err)
		}
		f.pctpCerts = cs
		f.certs, f.certKeys = append(f.certs, cs), append(f.certKeys, "pctp.tls")
	}
	for i, l := range cfg.Listeners {
		var tc *tls.Config
		if l.TLS.Enabled() {
			cs, err := core.NewCertStore(l.TLS)
			if err != nil {
				f.close()
				return nil, fmt.Errorf("listeners[%d].tls: %w", i, err)
			}
			tc = cs.Config()
			f.certs, f.certKeys = append(f.certs, cs), append(f.certKeys, fmt.Sprintf("listeners[%d].tls", i))
		}
		ln, err := cfg.SOCKS.ListenConfig().Listen(ctx, "tcp", net.JoinHostPort(l.Address, strconv.Itoa(l.Port)))
		if err != nil {
			f.close()
			return nil, fmt.Errorf("listener %s: %w", l.Name, err)
		}
		f.lns = append(f.lns, ln)
		f.specs = append(f.specs, l.Spec(tc))
	}
	return f, nil
}

// pctpListener wraps the PCTP listener in TLS when pctp.tls is set.
func (f *frontDoors) pctpListener(ln net.Listener) net.Listener {
	if f.pctpCerts == nil {
		return ln
	}
	return tls.NewListener(ln, f.pctpCerts.Config())
}

// addrs are the listeners' addresses (for Protect).
func (f *frontDoors) addrs() []net.Addr {
	out := make([]net.Addr, len(f.lns))
	for i, ln := range f.lns {
		out[i] = ln.Addr()
	}
	return out
}

// serve starts every listener with serve, and logs where each listens.
func (f *frontDoors) serve(logger hclog.Logger, serve func(name string, spec core.ListenerSpec, ln net.Listener)) {
	for i, ln := range f.lns {
		spec := f.specs[i]
		logger.Info("listener listening", "listener", spec.Name, "protocol", spec.Protocol, "tls", spec.TLS != nil, "chain", chainName(spec.Chain), "address", ln.Addr().String())
		serve("listener "+spec.Name, spec, ln)
	}
}

// reloadCerts reads every certificate again (SIGHUP); one that fails
// keeps the pair in force.
func (f *frontDoors) reloadCerts(logger hclog.Logger) {
	for i, cs := range f.certs {
		if err := cs.Reload(); err != nil {
			logger.Error("TLS certificate reload failed; the certificate in force stays", "key", f.certKeys[i], "error", err)
		}
	}
}

func (f *frontDoors) close() {
	for _, ln := range f.lns {
		ln.Close()
	}
}

func chainName(c string) string {
	if c == "" {
		return "chain"
	}
	return "chains." + c
}

// listenersChanged reports whether a reload changed the `listeners:` list
// or any TLS file (which need a restart; the certificates themselves
// are reloaded).
func listenersChanged(old, next *core.Config) bool {
	return !slices.Equal(old.Listeners, next.Listeners)
}
