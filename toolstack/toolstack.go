// Package toolstack holds what the project's dom0 command does in the
// toolstack's place: finding domains by name in xenstore
// (/local/domain/<id>/name, written by libxl), and, in its subpackages,
// attaching devices and serving guests' device models.
package toolstack

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/xenvtpm/xenvtpm/xenbus"
)

// Store is the part of the xenstore client used here; *xenbus.Client
// implements it.
type Store interface {
	ReadString(ctx context.Context, path string) (string, error)
	Directory(ctx context.Context, path string) ([]string, error)
}

// ErrNoDomain is wrapped by DomainID when no domain has the name.
var ErrNoDomain = errors.New("no such domain")

// DomainID resolves a domain given by name or by number. A number is
// checked to exist.
func DomainID(ctx context.Context, st Store, nameOrID string) (uint16, error) {
	if id, err := strconv.ParseUint(nameOrID, 10, 16); err == nil {
		if _, err := st.ReadString(ctx, fmt.Sprintf("/local/domain/%d/domid", id)); err != nil {
			if errors.Is(err, xenbus.ErrNoEnt) || errors.Is(err, xenbus.ErrAccess) {
				return 0, fmt.Errorf("domain %d: %w", id, ErrNoDomain)
			}
			return 0, fmt.Errorf("domain %d: %w", id, err)
		}
		return uint16(id), nil
	}
	ids, err := st.Directory(ctx, "/local/domain")
	if err != nil {
		return 0, fmt.Errorf("listing domains: %w", err)
	}
	for _, s := range ids {
		id, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			continue
		}
		name, err := st.ReadString(ctx, "/local/domain/"+s+"/name")
		if err == nil && name == nameOrID {
			return uint16(id), nil
		}
	}
	return 0, fmt.Errorf("domain %q: %w", nameOrID, ErrNoDomain)
}
