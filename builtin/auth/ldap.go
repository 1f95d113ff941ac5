package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/socks5d/socks5d/middleware"
)

// userToken is replaced by the user name in bind_dn (DN-escaped) and in
// filter (filter-escaped).
const userToken = "{user}"

// LDAPConfig holds the keys of an ldap backend.
type LDAPConfig struct {
	// StartTLS upgrades an ldap:// connection with StartTLS before any
	// bind (ldaps:// is TLS from the start).
	StartTLS bool `json:"start_tls"`
	// BindDN is a DN template for binding as the user directly, e.g.
	// "uid={user},ou=people,dc=example,dc=test". Set it, or BaseDN and
	// Filter (search-then-bind), not both.
	BindDN string `json:"bind_dn"`
	// BaseDN is where search-then-bind looks for the user.
	BaseDN string `json:"base_dn"`
	// Filter finds the user below BaseDN (default "(uid={user})").
	Filter string `json:"filter"`
	// ServiceDN and ServicePassword bind for the search (default: an
	// anonymous search).
	ServiceDN       string `json:"service_dn"`
	ServicePassword string `json:"service_password"`
	// AdminGroup is the DN of a group whose members get the ADMIN role
	// (member, uniqueMember or memberUid); everyone else is BASIC.
	AdminGroup string `json:"admin_group"`
}

// ldapBackend checks passwords by binding to a directory as the user, on
// a new connection for each check.
type ldapBackend struct {
	cfg     LDAPConfig
	url     string
	tls     *tls.Config
	timeout time.Duration
}

func newLDAP(bc BackendConfig, timeout time.Duration) (*ldapBackend, error) {
	c := bc.LDAPConfig
	u, err := url.Parse(bc.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return nil, fmt.Errorf("key \"url\": %q is not ldap://host[:port] or ldaps://host[:port]", bc.URL)
	}
	if u.Scheme == "ldaps" && c.StartTLS {
		return nil, errors.New("key \"start_tls\": an ldaps:// URL is already TLS")
	}
	switch {
	case c.BindDN != "" && (c.BaseDN != "" || c.Filter != "" || c.ServiceDN != ""):
		return nil, errors.New("key \"bind_dn\": give bind_dn (bind as the user) or base_dn with filter (search-then-bind), not both")
	case c.BindDN != "" && !strings.Contains(c.BindDN, userToken):
		return nil, fmt.Errorf("key \"bind_dn\": %q has no %s", c.BindDN, userToken)
	case c.BindDN == "" && c.BaseDN == "":
		return nil, errors.New("key \"base_dn\": an ldap backend needs bind_dn, or base_dn (search-then-bind)")
	case (c.ServiceDN == "") != (c.ServicePassword == ""):
		return nil, errors.New("key \"service_password\": service_dn and service_password go together")
	}
	if c.BindDN == "" && c.Filter == "" {
		c.Filter = "(" + "uid=" + userToken + ")"
	}
	if c.Filter != "" {
		if !strings.Contains(c.Filter, userToken) {
			return nil, fmt.Errorf("key \"filter\": %q has no %s", c.Filter, userToken)
		}
		if _, err := ldap.CompileFilter(strings.ReplaceAll(c.Filter, userToken, "x")); err != nil {
			return nil, fmt.Errorf("key \"filter\": %q: %w", c.Filter, err)
		}
	}
	for key, dn := range map[string]string{"base_dn": c.BaseDN, "service_dn": c.ServiceDN, "admin_group": c.AdminGroup,
		"bind_dn": strings.ReplaceAll(c.BindDN, userToken, "x")} {
		if dn == "" {
			continue
		}
		if _, err := ldap.ParseDN(dn); err != nil {
			return nil, fmt.Errorf("key %q: %q is not a DN: %w", key, dn, err)
		}
	}
	var tc *tls.Config
	if u.Scheme == "ldaps" || c.StartTLS {
		tc = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
		if bc.CAFile != "" {
			pool, err := loadCA(bc.CAFile)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = pool
		}
	} else if bc.CAFile != "" {
		return nil, errors.New("key \"ca_file\": only for ldaps:// or start_tls")
	}
	return &ldapBackend{cfg: c, url: bc.URL, tls: tc, timeout: timeout}, nil
}

// loadCA reads a PEM file of certificate authorities.
func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key \"ca_file\": %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("key \"ca_file\": %s holds no PEM certificate", path)
	}
	return pool, nil
}

// check binds as the user (directly, or after finding the user's entry),
// then asks whether the user is in the admin group. A wrong password is
// denyUser; a user the search does not find is unknownUser; a directory
// that cannot be reached, or refuses the service account, is an error
// wrapping ErrBackend.
func (l *ldapBackend) check(ctx context.Context, user, password string, _ origin) (verdict, middleware.Role, error) {
	if password == "" { // an empty password is an unauthenticated bind: it would "succeed"
		return denyUser, 0, nil
	}
	conn, err := l.dial(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var dn string
	if l.cfg.BindDN != "" {
		dn = strings.ReplaceAll(l.cfg.BindDN, userToken, ldap.EscapeDN(user))
	} else {
		if l.cfg.ServiceDN != "" {
			if err := conn.Bind(l.cfg.ServiceDN, l.cfg.ServicePassword); err != nil {
				if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
					return 0, 0, fmt.Errorf("%w: %s: the directory refused service_dn %q (wrong service_password?)", ErrBackend, l.url, l.cfg.ServiceDN)
				}
				return 0, 0, fmt.Errorf("%w: %s: service bind: %w", ErrBackend, l.url, err)
			}
		}
		filter := strings.ReplaceAll(l.cfg.Filter, userToken, ldap.EscapeFilter(user))
		res, err := conn.Search(ldap.NewSearchRequest(l.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			2, int(l.timeout/time.Second)+1, false, filter, []string{"1.1"}, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return 0, 0, fmt.Errorf("%w: %s: search below %q: %w", ErrBackend, l.url, l.cfg.BaseDN, err)
		}
		switch n := len(res.Entries); {
		case n == 0:
			return unknownUser, 0, nil
		case n > 1:
			return 0, 0, fmt.Errorf("%w: %s: filter %q matches more than one entry for user %q", ErrBackend, l.url, l.cfg.Filter, user)
		}
		dn = res.Entries[0].DN
	}
	if err := conn.Bind(dn, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return denyUser, 0, nil
		}
		return 0, 0, fmt.Errorf("%w: %s: bind: %w", ErrBackend, l.url, err)
	}
	if l.cfg.AdminGroup == "" {
		return allowUser, middleware.RoleBasic, nil
	}
	if l.cfg.ServiceDN != "" { // the service account reads groups; the user may not
		if err := conn.Bind(l.cfg.ServiceDN, l.cfg.ServicePassword); err != nil {
			return 0, 0, fmt.Errorf("%w: %s: service bind: %w", ErrBackend, l.url, err)
		}
	}
	filter := fmt.Sprintf("(|(member=%s)(uniqueMember=%s)(memberUid=%s))",
		ldap.EscapeFilter(dn), ldap.EscapeFilter(dn), ldap.EscapeFilter(user))
	res, err := conn.Search(ldap.NewSearchRequest(l.cfg.AdminGroup, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, int(l.timeout/time.Second)+1, false, filter, []string{"1.1"}, nil))
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return 0, 0, fmt.Errorf("%w: %s: admin_group %q does not exist", ErrBackend, l.url, l.cfg.AdminGroup)
	case err != nil:
		return 0, 0, fmt.Errorf("%w: %s: admin_group %q: %w", ErrBackend, l.url, l.cfg.AdminGroup, err)
	case len(res.Entries) > 0:
		return allowUser, middleware.RoleAdmin, nil
	}
	return allowUser, middleware.RoleBasic, nil
}

// dial connects, upgrades with StartTLS when asked, and sets the
// per-request timeout.
func (l *ldapBackend) dial(ctx context.Context) (*ldap.Conn, error) {
	d := &net.Dialer{Timeout: l.timeout}
	if dl, ok := ctx.Deadline(); ok {
		d.Deadline = dl
	}
	opts := []ldap.DialOpt{ldap.DialWithDialer(d)}
	if l.tls != nil {
		opts = append(opts, ldap.DialWithTLSConfig(l.tls))
	}
	conn, err := ldap.DialURL(l.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBackend, l.url, err)
	}
	conn.SetTimeout(l.timeout)
	if l.cfg.StartTLS {
		if err := conn.StartTLS(l.tls); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%w: %s: StartTLS: %w", ErrBackend, l.url, err)
		}
	}
	return conn, nil
}
