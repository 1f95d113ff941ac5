//go:build !unix

package forward

import (
	"context"
	"fmt"
	"syscall"
)

// socketControl refuses bind: and interface: where sockets cannot be
// bound before they connect by this code.
func socketControl(eg *egress) func(context.Context, string, string, syscall.RawConn) error {
	if !eg.bind.IsValid() && eg.iface == "" {
		return nil
	}
	return func(context.Context, string, string, syscall.RawConn) error {
		return fmt.Errorf("%w: bind: and interface: are supported on Unix only", ErrSocket)
	}
}
