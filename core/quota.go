package core

import (
	"fmt"
	"slices"
	"strings"

	"github.com/socks5d/socks5d/middleware"
)

// Quotas lists the users with traffic counted this period by every stage
// that keeps quotas (middleware.QuotaKeeper), by user; ok is false when
// no stage of the chain keeps quotas.
func (a *Admin) Quotas() (list []middleware.QuotaUsage, ok bool) {
	for _, st := range a.r.snap.Load().Stages {
		if qk, is := st.Middleware.(middleware.QuotaKeeper); is {
			list, ok = append(list, qk.Quotas()...), true
		}
	}
	slices.SortStableFunc(list, func(a, b middleware.QuotaUsage) int { return strings.Compare(a.User, b.User) })
	return list, ok
}

// ResetQuota sets a user's count this period back to 0 in every stage that
// keeps quotas; found is false when none had a count for the user. The
// error wraps ErrNoQuota when no stage keeps quotas.
func (a *Admin) ResetQuota(name string) (found bool, err error) {
	keeper := false
	for _, st := range a.r.snap.Load().Stages {
		qk, is := st.Middleware.(middleware.QuotaKeeper)
		if !is {
			continue
		}
		keeper = true
		f, rerr := qk.ResetQuota(name)
		found = found || f
		if rerr != nil {
			err = fmt.Errorf("stage %s: %w", st.Name, rerr)
		}
	}
	if !keeper {
		return false, ErrNoQuota
	}
	return found, err
}
