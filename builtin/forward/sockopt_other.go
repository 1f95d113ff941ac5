//go:build !linux

package forward

import (
	"errors"
)

// bindToDevice is Linux's SO_BINDTODEVICE; elsewhere interface: is refused
// at dial time.
func bindToDevice(uintptr, string) error {
	return errors.New("interface: is supported on Linux only")
}

func bindNoPort(uintptr) {}
