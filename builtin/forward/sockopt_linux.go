package forward

import "syscall"

// bindToDevice binds the socket to an interface (SO_BINDTODEVICE).
func bindToDevice(fd uintptr, name string) error {
	return syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, name)
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT: a socket bound to a
// local address before it connects gets its port at connect time, so
// bound connections share the ephemeral ports as unbound ones do.
const ipBindAddressNoPort = 24

// bindNoPort asks the kernel to pick the port at connect time.
func bindNoPort(fd uintptr) {
	_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
}
