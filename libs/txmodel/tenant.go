package txmodel

import (
	"errors"
	"fmt"
)

// DefaultTenant is the implicit tenant: of every transaction stored
// before tenants existed, of a queue message of version 1, and of every
// request when the api runs without authentication.
const DefaultTenant = "default"

// MaxTenantLength is the most bytes a tenant's name holds.
const MaxTenantLength = 64

// ErrBadTenant is wrapped by CheckTenant's errors.
var ErrBadTenant = errors.New("invalid tenant")

// CheckTenant reports whether name can name a tenant: 1 to
// MaxTenantLength ASCII letters, digits, '.', '_' or '-', starting with a
// letter or digit. A tenant's name is written to logs, metrics labels and
// traces, so it is kept plain.
func CheckTenant(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadTenant)
	}
	if len(name) > MaxTenantLength {
		return fmt.Errorf("%w: longer than %d bytes", ErrBadTenant, MaxTenantLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return fmt.Errorf("%w: %q: want letters, digits, '.', '_' or '-', starting with a letter or digit", ErrBadTenant, truncate(name, MaxTenantLength))
		}
	}
	return nil
}
