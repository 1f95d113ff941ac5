package core

import (
	"fmt"
	"os"
	"slices"
)

// Warning is something start-up should tell the operator: the server can
// run, but probably not as intended. Msg is one line; Args are hclog
// key/value pairs.
type Warning struct {
	Msg  string
	Args []any
}

// StartupWarnings lists what an operator would want told at start about
// the configuration and the state file at statePath: an admin port
// reachable from other hosts without TLS, plaintext passwords in
// a configuration file others may read, a PROXY protocol trusted list
// that trusts everyone, and a state file others may read or write. It
// reads only file modes.
func StartupWarnings(cfg *Config, statePath string) []Warning {
	var out []Warning
	if ip, err := listenAddr(cfg.PCTP.Address); err == nil && !ip.IsLoopback() && !cfg.PCTP.TLS.Enabled() {
		out = append(out, Warning{
			Msg:  "PCTP admin port is not on loopback and runs without TLS: its logins and commands cross the network in plaintext; set pctp.tls, firewall it or reach it through a tunnel",
			Args: []any{"key", "pctp.address", "address", listenerLabel(cfg.PCTP.Address)},
		})
	}
	if cfg.Source != "" && slices.ContainsFunc(cfg.Users, func(u UserConfig) bool { return !u.FromFlag && !IsBcryptHash(u.Password) }) {
		if fi, err := os.Stat(cfg.Source); err == nil && fi.Mode().Perm()&0o044 != 0 {
			out = append(out, Warning{
				Msg:  "configuration file holds plaintext passwords and is readable by other users: chmod 600 it, or store bcrypt hashes (socks5d hash)",
				Args: []any{"file", cfg.Source, "mode", modeString(fi.Mode())},
			})
		}
	}
	for _, p := range proxyTrustedOf(cfg.SOCKS.ProxyProtocol) {
		if p.Bits() == 0 {
			out = append(out, Warning{
				Msg:  "socks.proxy_protocol.trusted trusts every address: any client can send a PROXY header and choose the address limits, bans and LOGS see; list only the load balancers",
				Args: []any{"key", "socks.proxy_protocol.trusted", "prefix", p.String()},
			})
		}
	}
	if fi, err := os.Stat(statePath); err == nil && fi.Mode().Perm()&^0o600 != 0 {
		out = append(out, Warning{
			Msg:  "state file permissions are looser than 0600 (it holds password hashes): chmod 600 it",
			Args: []any{"file", statePath, "mode", modeString(fi.Mode())},
		})
	}
	return out
}

func listenerLabel(a string) string {
	if a == "" {
		return "every address"
	}
	return a
}

func modeString(m os.FileMode) string { return fmt.Sprintf("%#o", m.Perm()) }
