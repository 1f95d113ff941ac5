package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// localAddr reports whether the kernel delivers packets for ip to this
// host: it asks for the route to ip (RTM_GETROUTE, what `ip route get`
// does; ip's zone gives the outgoing interface) and looks for a route of
// type local. That covers every address of every interface, whenever it
// was added, and local routes (AnyIP) too. A destination with no route is
// not local (the dial fails anyway). When netlink is unavailable it falls
// back to reading the interface addresses.
func localAddr(ip netip.Addr) (bool, error) {
	typ, err := routeType(ip)
	switch {
	case err == nil:
		return typ == syscall.RTN_LOCAL, nil
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return false, nil
	case errors.Is(err, errNetlink):
		return localByInterfaces(ip)
	}
	return false, err
}

// errNetlink marks a failure to talk to the kernel at all.
var errNetlink = errors.New("core: netlink route query failed")

// routeType returns the type (RTN_*) of the route the kernel would use
// for ip.
func routeType(ip netip.Addr) (uint8, error) {
	ip = ip.Unmap()
	oif := uint32(0)
	if zone := ip.Zone(); zone != "" {
		if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
			oif = uint32(n)
		} else {
			ifi, err := net.InterfaceByName(zone)
			if err != nil {
				return 0, fmt.Errorf("zone %q: %w", zone, err)
			}
			oif = uint32(ifi.Index)
		}
	}
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_ROUTE)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errNetlink, err)
	}
	defer syscall.Close(fd)
	tv := syscall.Timeval{Sec: 1}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return 0, fmt.Errorf("%w: %w", errNetlink, err)
	}
	kernel := &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("%w: %w", errNetlink, err)
	}
	if err := syscall.Sendto(fd, routeRequest(ip, oif), 0, kernel); err != nil {
		return 0, fmt.Errorf("%w: %w", errNetlink, err)
	}
	var buf [4096]byte
	n, _, err := syscall.Recvfrom(fd, buf[:], 0)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errNetlink, err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errNetlink, err)
	}
	for _, m := range msgs {
		if m.Header.Seq != 1 {
			continue
		}
		switch m.Header.Type {
		case syscall.NLMSG_ERROR:
			if len(m.Data) < 4 {
				return 0, errNetlink
			}
			return 0, syscall.Errno(-int32(binary.NativeEndian.Uint32(m.Data)))
		case syscall.RTM_NEWROUTE:
			if len(m.Data) < syscall.SizeofRtMsg {
				return 0, errNetlink
			}
			return m.Data[7], nil // rtmsg.rtm_type
		}
	}
	return 0, errNetlink
}

// routeRequest is an RTM_GETROUTE message for ip, out of interface oif
// when not 0.
func routeRequest(ip netip.Addr, oif uint32) []byte {
	ne := binary.NativeEndian
	raw := ip.AsSlice()
	family := uint8(syscall.AF_INET6)
	if ip.Is4() {
		family = syscall.AF_INET
	}
	b := make([]byte, syscall.NLMSG_HDRLEN+syscall.SizeofRtMsg, 64)
	b[syscall.NLMSG_HDRLEN] = family                // rtm_family
	b[syscall.NLMSG_HDRLEN+1] = uint8(len(raw) * 8) // rtm_dst_len
	attr := func(typ uint16, data []byte) {
		a := make([]byte, (syscall.SizeofRtAttr+len(data)+3)&^3)
		ne.PutUint16(a[0:], uint16(syscall.SizeofRtAttr+len(data)))
		ne.PutUint16(a[2:], typ)
		copy(a[syscall.SizeofRtAttr:], data)
		b = append(b, a...)
	}
	attr(syscall.RTA_DST, raw)
	if oif != 0 {
		attr(syscall.RTA_OIF, ne.AppendUint32(nil, oif))
	}
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], syscall.RTM_GETROUTE)
	ne.PutUint16(b[6:], syscall.NLM_F_REQUEST)
	ne.PutUint32(b[8:], 1) // sequence number
	return b
}
