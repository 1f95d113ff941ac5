package core

import "fmt"

// Readiness, for load balancers and orchestrators: a server is ready for
// new connections when its saved state is loaded, its SOCKS accept loop is
// running and it is not draining. Liveness needs nothing from core: a
// process that answers is alive.

// Ready returns nil when the server should be sent new connections, or an
// error wrapping ErrNotReady whose text is the one-line reason. It takes
// no lock, so a probe never waits for a change in progress.
func (r *Runtime) Ready() error {
	switch {
	case r.draining.Load():
		return fmt.Errorf("%w: draining, not accepting new connections", ErrNotReady)
	case !r.stateLoaded.Load():
		return fmt.Errorf("%w: the saved state is not loaded", ErrNotReady)
	case r.accepting.Load() == 0:
		return fmt.Errorf("%w: the SOCKS listener is not accepting", ErrNotReady)
	}
	return nil
}
