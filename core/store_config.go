package core

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// StoreConfig is the `store:` section: where what administrators change
// (users, roles, settings, rules) is kept. "file" (the default) is the
// state file in data_dir; "etcd" is a store shared by every instance of a
// fleet, which cmd wires in (core never imports the etcd client).
type StoreConfig struct {
	// Kind is file or etcd.
	Kind string `koanf:"kind"`
	// Endpoints are the etcd members, host:port or http(s)://host:port.
	Endpoints []string `koanf:"endpoints"`
	// Prefix is the key prefix every instance of one fleet shares.
	Prefix string `koanf:"prefix"`
	// DialTimeout bounds connecting to etcd and each request to it.
	DialTimeout time.Duration `koanf:"dial_timeout"`
	// Username and Password authenticate to etcd (both or neither).
	Username string `koanf:"username"`
	Password string `koanf:"password"`
	// TLS: a CA to verify the members with, and a client certificate.
	TLS StoreTLSConfig `koanf:"tls"`
}

// StoreTLSConfig names the files of TLS to etcd; all empty: no TLS.
type StoreTLSConfig struct {
	CA   string `koanf:"ca"`
	Cert string `koanf:"cert"`
	Key  string `koanf:"key"`
}

// storeDefaults are the built-in defaults of the `store:` section.
func storeDefaults(m map[string]any) {
	m["store.kind"] = "file"
	m["store.prefix"] = "/socks5d/"
	m["store.dial_timeout"] = "5s"
}

// validate checks the `store:` section; every error names its key.
func (c StoreConfig) validate() error {
	switch c.Kind {
	case "file":
		return nil
	case "etcd":
	default:
		return keyError("store.kind", "want file or etcd, got %q", c.Kind)
	}
	if len(c.Endpoints) == 0 {
		return keyError("store.endpoints", "store.kind etcd needs at least one endpoint (host:port)")
	}
	for i, e := range c.Endpoints {
		if err := validEndpoint(e); err != nil {
			return keyError(fmt.Sprintf("store.endpoints[%d]", i), "%q: %v", e, err)
		}
	}
	if !strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/") || len(c.Prefix) < 2 || strings.Contains(c.Prefix, "//") {
		return keyError("store.prefix", "%q: want a key prefix that starts and ends with / and names something, such as /socks5d/", c.Prefix)
	}
	if c.DialTimeout < 100*time.Millisecond || c.DialTimeout > 5*time.Minute {
		return keyError("store.dial_timeout", "%s is out of range 100ms-5m", c.DialTimeout)
	}
	if (c.Username == "") != (c.Password == "") {
		return keyError("store.username", "username and password go together: give both or neither")
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return keyError("store.tls.cert", "a client certificate needs its key (store.tls.key), and a key its certificate")
	}
	return nil
}

// validEndpoint accepts host:port and http(s)://host:port.
func validEndpoint(e string) error {
	hostport := e
	if strings.Contains(e, "://") {
		u, err := url.Parse(e)
		if err != nil {
			return err
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("scheme %q: want http or https", u.Scheme)
		}
		if u.Path != "" && u.Path != "/" {
			return fmt.Errorf("an endpoint has no path")
		}
		hostport = u.Host
	}
	i := strings.LastIndexByte(hostport, ':')
	if i <= 0 || i == len(hostport)-1 {
		return fmt.Errorf("want host:port")
	}
	return nil
}
