package core

import (
	"net"
	"os"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// maxInstanceName bounds instance_name, a label on every metric.
const maxInstanceName = 128

// validateInstanceName checks instance_name: empty (the default), or up to
// maxInstanceName octets of printable UTF-8.
func validateInstanceName(name string) error {
	if len(name) > maxInstanceName {
		return keyError("instance_name", "%d octets, want at most %d", len(name), maxInstanceName)
	}
	if !utf8.ValidString(name) {
		return keyError("instance_name", "not valid UTF-8")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return keyError("instance_name", "%q holds a control or non-printing character", name)
		}
	}
	return nil
}

// InstanceName is the name this instance gives itself in a fleet: on
// every metric (the instance_name label) and in the start-up log. It is
// instance_name when set, else the host name and the port the SOCKS
// listener is bound to (socks, its address), e.g. "proxy-1:1080".
func (c *Config) InstanceName(socks net.Addr) string {
	if c.Instance != "" {
		return c.Instance
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	port := c.SOCKS.Port
	if ta, ok := socks.(*net.TCPAddr); ok {
		port = ta.Port
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}
