package portguard

import "errors"

// ErrPortNotAllowed is behind every refusal: the destination port is not on
// the allow list. The client gets reply 0x02 (not allowed by ruleset).
var ErrPortNotAllowed = errors.New("portguard: destination port not allowed")
