package forward

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/socks5d/socks5d/middleware"
)

// Egress is how a connection leaves, as written in a rule (or its
// fallback): directly (the default) or through a chain of upstream
// proxies, from the system's choice of local address or from a given one
// or interface.
type Egress struct {
	// Direct says the connection goes straight to the destination; it is
	// what applies when via is absent.
	Direct bool `json:"direct"`
	// Via lists upstream proxies traversed in order:
	// socks5://[user:pass@]host:port or http://[user:pass@]host:port.
	Via []string `json:"via"`
	// Bind is the local IP the outgoing socket is bound to.
	Bind string `json:"bind"`
	// Interface is the network interface the outgoing socket is bound to
	// (SO_BINDTODEVICE; Linux).
	Interface string `json:"interface"`
}

// upstream is one hop of a chain.
type upstream struct {
	scheme string // socks5 or http
	host   string // host:port
	user   string
	pass   string
	hasPW  bool
	raw    string // as written, with the password: for the state file
	shown  string // with the password masked: for output and logs
	key    string // scheme://host:port: what its counters are kept by
}

// egress is a compiled Egress; it is immutable.
type egress struct {
	hops  []*upstream
	bind  netip.Addr
	iface string
	label string // how SESSIONS and the records name it
}

// maskedPassword is what a password is shown as.
const maskedPassword = "***"

// parseUpstream parses and checks an upstream URL; where names it in
// errors, which never show the password.
func parseUpstream(where, raw string) (*upstream, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not a URL (want socks5://[user:pass@]host:port or http://host:port)", middleware.ErrBadValue, where)
	}
	up := &upstream{scheme: strings.ToLower(u.Scheme), raw: raw}
	switch up.scheme {
	case "socks5", "socks5h":
		up.scheme = "socks5"
	case "http":
	default:
		return nil, fmt.Errorf("%w: %s: scheme %q is not socks5 or http", middleware.ErrBadValue, where, u.Scheme)
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: %s: want only scheme://[user:pass@]host:port", middleware.ErrBadValue, where)
	}
	host, port, err := splitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", middleware.ErrBadValue, where, err)
	}
	up.host = net2(host, port)
	if u.User != nil {
		up.user = u.User.Username()
		up.pass, up.hasPW = u.User.Password()
		if up.user == "" || len(up.user) > 255 || len(up.pass) > 255 || (up.scheme == "socks5" && !up.hasPW) {
			return nil, fmt.Errorf("%w: %s: credentials must be user:password, each 1-255 octets", middleware.ErrBadValue, where)
		}
		if up.hasPW && up.pass == maskedPassword {
			return nil, fmt.Errorf("%w: %s: the password is shown masked (%s); give the password itself", middleware.ErrBadValue, where, maskedPassword)
		}
	}
	up.key = up.scheme + "://" + up.host
	up.shown = up.scheme + "://"
	if up.user != "" {
		up.shown += url.User(up.user).String()
		if up.hasPW {
			up.shown += ":" + maskedPassword
		}
		up.shown += "@"
	}
	up.shown += up.host
	return up, nil
}

// splitHostPort checks host:port: a host name or an IP, and a port 1-65535.
func splitHostPort(hp string) (string, string, error) {
	host, port, ok := strings.Cut(hp, "]:")
	if ok && strings.HasPrefix(host, "[") {
		host = host[1:]
	} else if i := strings.LastIndexByte(hp, ':'); i > 0 && !strings.Contains(hp[:i], ":") {
		host, port = hp[:i], hp[i+1:]
	} else {
		return "", "", fmt.Errorf("%q: want host:port", hp)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || host == "" {
		return "", "", fmt.Errorf("%q: want host:port with a port 1-65535", hp)
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Zone() != "" {
		return "", "", fmt.Errorf("%q: an address with a zone is not supported", hp)
	}
	return host, port, nil
}

func net2(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// compileEgress checks e; where names it in errors ("rules[2]",
// "rules[2].fallback").
func compileEgress(where string, e Egress) (*egress, error) {
	eg := &egress{}
	if e.Direct && e.Via != nil {
		return nil, fmt.Errorf("%w: %s: direct and via exclude each other", middleware.ErrBadValue, where)
	}
	if e.Via != nil && len(e.Via) == 0 {
		return nil, fmt.Errorf("%w: %s.via: empty list (leave it out, or say direct: true)", middleware.ErrBadValue, where)
	}
	for i, raw := range e.Via {
		up, err := parseUpstream(where+".via["+strconv.Itoa(i)+"]", raw)
		if err != nil {
			return nil, err
		}
		eg.hops = append(eg.hops, up)
	}
	if e.Bind != "" {
		a, err := netip.ParseAddr(e.Bind)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%w: %s.bind: %q is not an IP address", middleware.ErrBadValue, where, e.Bind)
		}
		eg.bind = a.Unmap()
	}
	if e.Interface != "" {
		if len(e.Interface) > 15 || strings.ContainsAny(e.Interface, "/ \t\n\x00") {
			return nil, fmt.Errorf("%w: %s.interface: %q is not an interface name (1-15 octets, no '/' or spaces)", middleware.ErrBadValue, where, e.Interface)
		}
		eg.iface = e.Interface
	}
	eg.label = eg.text(" ")
	eg.label = strings.ReplaceAll(eg.label, " ", "+")
	return eg, nil
}

// text is the egress in the one-line syntax, fields joined by sep:
// direct, via=..., bind=..., interface=... (passwords masked).
func (eg *egress) text(sep string) string {
	var parts []string
	if len(eg.hops) == 0 && !eg.bind.IsValid() && eg.iface == "" {
		return "direct"
	}
	if len(eg.hops) > 0 {
		shown := make([]string, len(eg.hops))
		for i, h := range eg.hops {
			shown[i] = h.shown
		}
		parts = append(parts, "via="+strings.Join(shown, ","))
	}
	if eg.bind.IsValid() {
		parts = append(parts, "bind="+eg.bind.String())
	}
	if eg.iface != "" {
		parts = append(parts, "interface="+eg.iface)
	}
	return strings.Join(parts, sep)
}

// config returns the egress in its YAML shape, passwords as written (for
// the state file).
func (eg *egress) config(m map[string]any) {
	if len(eg.hops) == 0 {
		m["direct"] = true
	} else {
		via := make([]any, len(eg.hops))
		for i, h := range eg.hops {
			via[i] = h.raw
		}
		m["via"] = via
	}
	if eg.bind.IsValid() {
		m["bind"] = eg.bind.String()
	}
	if eg.iface != "" {
		m["interface"] = eg.iface
	}
}
