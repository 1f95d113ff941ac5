package core

import (
	"fmt"
	"net/netip"
	"time"
)

// socks.udp: UDP ASSOCIATE's settings, checked and converted (the
// association itself is in udp.go).

// defaultUDPIdle is socks.udp.idle_timeout's default.
const defaultUDPIdle = 2 * time.Minute

// UDPSettings are UDP ASSOCIATE's settings (socks.udp).
type UDPSettings struct {
	// PortLow and PortHigh bound the relay port; both 0: any ephemeral port.
	PortLow, PortHigh uint16
	// Advertise replaces the relay's IP in the reply (NAT); invalid: none.
	Advertise netip.Addr
	// IdleTimeout ends an association without datagrams either way.
	IdleTimeout time.Duration
	// MaxAssociations and PerUser cap open associations, in total and per
	// user (per client IP when anonymous); 0 is unlimited.
	MaxAssociations int
	PerUser         int
}

// validate checks socks.udp.
func (c UDPConfig) validate() error {
	if c.Ports.Lo == 0 && c.Ports.Hi != 0 {
		return keyError("socks.udp.ports", "%s: want 0 (any port), a port or a range low-high of ports 1-65535", c.Ports)
	}
	if c.Advertise != "" {
		a, err := netip.ParseAddr(c.Advertise)
		if err != nil || a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("%w: socks.udp.advertise: want a unicast IP address, got %q", ErrConfig, c.Advertise)
		}
	}
	if c.MaxAssociations < 0 {
		return fmt.Errorf("%w: socks.udp.max_associations: must be 0 (unlimited) or more, got %d", ErrConfig, c.MaxAssociations)
	}
	if c.PerUser < 0 {
		return fmt.Errorf("%w: socks.udp.per_user: must be 0 (unlimited) or more, got %d", ErrConfig, c.PerUser)
	}
	return nil
}

// udpSettingsOf converts a validated socks.udp; zero durations (a Config
// built by hand) take the default.
func udpSettingsOf(c UDPConfig) UDPSettings {
	u := UDPSettings{IdleTimeout: c.IdleTimeout, MaxAssociations: c.MaxAssociations, PerUser: c.PerUser}
	u.PortLow, u.PortHigh = c.Ports.Lo, c.Ports.Hi
	u.Advertise, _ = netip.ParseAddr(c.Advertise)
	u.Advertise = u.Advertise.Unmap()
	if u.IdleTimeout <= 0 {
		u.IdleTimeout = defaultUDPIdle
	}
	return u
}
