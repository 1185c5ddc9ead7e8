package vstate

import (
	"errors"
	"fmt"

	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
)

// Manager is the manager domain as the store sees it: the keeper of one
// 64-byte blob per vTPM (Xen vtpmmgr's SAVEHASHKEY and LOADHASHKEY).
type Manager interface {
	// SaveHashKey replaces the vTPM's blob and returns once the manager
	// has made it durable.
	SaveHashKey(blob []byte) error
	// LoadHashKey returns the vTPM's blob, or an error satisfying
	// errors.Is(err, ErrNoRecord) when the manager has none.
	LoadHashKey() ([]byte, error)
}

// NewManagerClient is a Manager speaking the vtpmmgr wire protocol over
// send, which carries one request to the manager and returns its answer
// (drivers/tpmfront's Send, with the context and locality bound).
func NewManagerClient(send func(cmd []byte) ([]byte, error)) Manager {
	return client{send}
}

type client struct {
	send func([]byte) ([]byte, error)
}

func (c client) SaveHashKey(blob []byte) error {
	cmd, err := proto.EncodeSaveHashKey(blob)
	if err != nil {
		return err
	}
	rsp, err := c.send(cmd)
	if err != nil {
		return fmt.Errorf("SAVEHASHKEY: %w", err)
	}
	if _, err := proto.ParseResponse(rsp, proto.TagVTPMReq); err != nil {
		return fmt.Errorf("SAVEHASHKEY: %w", err)
	}
	return nil
}

func (c client) LoadHashKey() ([]byte, error) {
	rsp, err := c.send(proto.EncodeLoadHashKey())
	if err != nil {
		return nil, fmt.Errorf("LOADHASHKEY: %w", err)
	}
	blob, err := proto.DecodeLoadHashKeyResponse(rsp)
	var pe *proto.Error
	if errors.As(err, &pe) && pe.Code == proto.TPMKeyNotFound {
		return nil, fmt.Errorf("%w (%w)", ErrNoRecord, err)
	}
	return blob, err
}
