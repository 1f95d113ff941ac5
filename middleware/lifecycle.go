package middleware

// Lifecycle: what a stage may do when the chain it belongs to goes live
// and when it is retired.
//
// A stage's life, as the engine runs it (Caddy's modules follow the same
// order: New, Provision, ..., Cleanup):
//
//  1. New builds it from its configuration. New has no effect beyond
//     finding its state in Shared: it runs on every change of the live
//     configuration, and a change may still fail after it (another
//     stage refuses its settings, the change cannot be saved).
//  2. Activate (an Activator's) runs once the snapshot holding the stage
//     is the live one, before the change is acknowledged. This is where a
//     stage applies its settings to state it shares with the stages it
//     replaced: resize a ring, retune rate limiters. The engine activates
//     snapshots one at a time, in the order they went live.
//  3. Cleanup (a Cleaner's) runs once the stage is retired: when the
//     snapshot holding it was replaced by a newer one, when the server
//     closes, or at once if the change that built it failed (then it was
//     never activated). Connections that started on the old snapshot may
//     still be running through the stage when Cleanup runs, so Cleanup may
//     release only what those connections no longer need.
//
// Both run with the engine's change lock held: they must be quick, must
// not block on the network, and must not call back into the engine (a
// PCTP command, a Runtime method). State kept in Shared is closed by the
// pool, not by Cleanup.

// Activator is implemented by a stage that applies its settings to
// shared state when its chain goes live, rather than when it is built.
type Activator interface {
	Activate()
}

// Cleaner is implemented by a stage that releases something when it is
// retired (its chain replaced, the server closed, or its change failed).
type Cleaner interface {
	Cleanup()
}

// Activate calls Activate on every stage of stages that is an Activator,
// in order. The engine calls it with a snapshot's stages once it is live;
// mwtest does the same for a stage it installs.
func Activate(stages ...Middleware) {
	for _, mw := range stages {
		if a, ok := mw.(Activator); ok {
			a.Activate()
		}
	}
}

// Cleanup calls Cleanup on every stage of stages that is a Cleaner, in
// order.
func Cleanup(stages ...Middleware) {
	for _, mw := range stages {
		if c, ok := mw.(Cleaner); ok {
			c.Cleanup()
		}
	}
}
