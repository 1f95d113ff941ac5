package mwtest

import "errors"

// Sentinel errors.
var (
	// ErrNotASetting is returned by Set for a key the stage does not list
	// as a live setting (the engine's CONFIG refuses it too).
	ErrNotASetting = errors.New("mwtest: not a live setting of the stage")
	// ErrNotRegistered is returned by Set for a stage type nobody
	// registered.
	ErrNotRegistered = errors.New("mwtest: stage type not registered")
)
