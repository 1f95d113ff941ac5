package middleware_test

import (
	"errors"
	"testing"

	"github.com/socks5d/socks5d/middleware"
)

func TestCheckRemoval(t *testing.T) {
	for _, tc := range []struct {
		role   middleware.Role
		admins int
		want   error
	}{
		{middleware.RoleAdmin, 1, middleware.ErrLastAdmin},
		{middleware.RoleAdmin, 2, nil},
		{middleware.RoleBasic, 1, nil},
		{middleware.RoleBasic, 0, nil},
	} {
		if err := middleware.CheckRemoval(tc.role, tc.admins); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("CheckRemoval(%v, %d) = %v, want %v", tc.role, tc.admins, err, tc.want)
		}
	}
}
