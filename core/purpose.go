package core

import (
	"fmt"

	"github.com/socks5d/socks5d/middleware"
)

// Purpose returns the key, "<stage name>.<key>", of the setting or list
// that serves p (middleware.Purposeful), as Set, Items, InsertItem and
// DeleteItem take it. With stage "" it is the first stage in chain order
// that declares p; otherwise it is the stage of that name, which must
// declare it. The error wraps ErrNoPurpose.
func (a *Admin) Purpose(p middleware.Purpose, stage string) (string, error) {
	for _, st := range a.r.snap.Load().Stages {
		if stage != "" && st.Name != stage {
			continue
		}
		if pf, ok := st.Middleware.(middleware.Purposeful); ok {
			if key, ok := pf.Purpose(p); ok {
				return st.Name + "." + key, nil
			}
		}
		if stage != "" {
			return "", fmt.Errorf("%w: stage %q does not declare %s", ErrNoPurpose, stage, p)
		}
	}
	if stage != "" {
		return "", fmt.Errorf("%w: no stage %q in the chain", ErrNoPurpose, stage)
	}
	return "", fmt.Errorf("%w: no stage in the chain declares %s", ErrNoPurpose, p)
}
