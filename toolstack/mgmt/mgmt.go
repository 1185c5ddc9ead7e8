// Package mgmt is a client for the manager domain's management ordinals
// (tag 0x01C2; Xen vtpmmgr's vtpm_manager.h and mgmt_authority.c, with
// the bodies docs/manager-groups.md records): groups, their SAA keys and
// signed configuration lists, and the vTPMs in them. It speaks through
// any Transmitter — in dom0, a vtpm frontend attached to the manager
// domain — and checks every response strictly.
package mgmt

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
)

// Transmitter sends one request message and returns the response
// message. go-tpm's transport.TPM has this shape, and so has the TPM
// transport of dom0's vtpm frontend (vtpmdev.Device.TPM).
type Transmitter interface {
	Send(cmd []byte) ([]byte, error)
}

// Sizes of response fields.
const (
	UUIDSize     = 16
	MaxListPage  = proto.MaxVTPMList // UUIDs in one VTPM_LIST response
	caDigestSize = 20                // GROUP_NEW's CA digest (unused: zeros)
)

// Error is a non-zero return code from the manager.
type Error struct {
	Ordinal uint32
	Code    uint32
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", OrdinalName(e.Ordinal), Explain(e.Ordinal, e.Code))
}

// OrdinalName names a management ordinal.
func OrdinalName(ord uint32) string {
	switch ord {
	case proto.OrdGroupList:
		return "GROUP_LIST"
	case proto.OrdGroupNew:
		return "GROUP_NEW"
	case proto.OrdGroupDel:
		return "GROUP_DEL"
	case proto.OrdGroupUpdate:
		return "GROUP_UPDATE"
	case proto.OrdGroupShow:
		return "GROUP_SHOW"
	case proto.OrdVTPMList:
		return "VTPM_LIST"
	case proto.OrdVTPMNew:
		return "VTPM_NEW"
	case proto.OrdVTPMDel:
		return "VTPM_DEL"
	case proto.OrdGroupCACert:
		return "GROUP_CA_CERT"
	case proto.OrdGroupAK:
		return "GROUP_AK"
	case proto.OrdGroupActivate:
		return "GROUP_ACTIVATE"
	}
	return fmt.Sprintf("ordinal %#08x", ord)
}

// Explain says what return code c means in answer to ordinal ord.
func Explain(ord, c uint32) string {
	switch c {
	case proto.TPMAuthFail:
		if ord == proto.OrdGroupUpdate {
			return "TPM_AUTHFAIL (1): the list is not signed by the group's SAA key, or this frontend is not the manager's administrator"
		}
		return "TPM_AUTHFAIL (1): this frontend is not the manager's administrator"
	case proto.TPMBadIndex:
		switch ord {
		case proto.OrdGroupList, proto.OrdGroupNew, proto.OrdVTPMDel:
			return "VTPM_UNSUPPORTED (2): the manager does not support groups (an older manager)"
		}
		return "TPM_BADINDEX (2): no such group (or VTPM_UNSUPPORTED from a manager without groups)"
	case proto.TPMBadParameter:
		if ord == proto.OrdGroupUpdate {
			return "TPM_BAD_PARAMETER (3): the manager refused the list as malformed or not for this group (group UUID or TPM family)"
		}
		return "TPM_BAD_PARAMETER (3): the manager refused the request as malformed"
	case proto.TPMKeyNotFound:
		return "TPM_KEYNOTFOUND (13): no such vTPM"
	case proto.TPMNoSpace:
		return "TPM_NOSPACE (17): the manager has no room for another group or vTPM"
	case proto.TPMBadKeyProperty:
		return "TPM_BAD_KEY_PROPERTY (0x28): the manager does not take this SAA key type"
	case proto.TPMAreaLocked:
		switch ord {
		case proto.OrdGroupDel:
			return "TPM_AREA_LOCKED (0x3C): the group is in use (it still has vTPMs, or it is group 0)"
		case proto.OrdVTPMDel:
			return "TPM_AREA_LOCKED (0x3C): the vTPM is in use (its vTPM domain is connected)"
		}
		return "TPM_AREA_LOCKED (0x3C): in use"
	case proto.TPMBadCounter:
		return "TPM_BAD_COUNTER (0x45): the list's sequence number is not above the installed one (an older list)"
	case proto.TPMBadParamSize:
		return "TPM_BAD_PARAM_SIZE (25): the manager refused the request's length"
	case proto.TPMBadOrdinal:
		if ord == proto.OrdGroupCACert {
			return "TPM_BAD_ORDINAL (10): the manager issues no EK certificates (an older manager)"
		}
		return "TPM_BAD_ORDINAL (10): the manager does not know this ordinal"
	case proto.TPMFail:
		return "TPM_FAIL (9): the manager failed (see its console)"
	case proto.TPMRetry:
		return "TPM_RETRY (0x800): the manager is busy; try again"
	}
	return fmt.Sprintf("return code %d (%#x)", c, c)
}

// Codes, for errors.Is-style tests: IsCode reports whether err is an
// *Error with code c.
func IsCode(err error, c uint32) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == c
}

// Code values callers test with IsCode.
const (
	CodeAuthFail       = proto.TPMAuthFail
	CodeBadIndex       = proto.TPMBadIndex
	CodeBadParameter   = proto.TPMBadParameter
	CodeKeyNotFound    = proto.TPMKeyNotFound
	CodeNoSpace        = proto.TPMNoSpace
	CodeBadKeyProperty = proto.TPMBadKeyProperty
	CodeAreaLocked     = proto.TPMAreaLocked
	CodeBadCounter     = proto.TPMBadCounter
)

// Client issues management ordinals through T.
type Client struct {
	T Transmitter
}

// call sends ordinal ord with params and returns the response body.
func (c Client) call(ord uint32, params []byte) ([]byte, error) {
	n := proto.HeaderSize + len(params)
	if n > proto.MaxMessage {
		return nil, fmt.Errorf("%s: request of %d bytes exceeds the %d-byte limit", OrdinalName(ord), n, proto.MaxMessage)
	}
	req := make([]byte, proto.HeaderSize, n)
	binary.BigEndian.PutUint16(req[0:2], proto.TagMgmtReq)
	binary.BigEndian.PutUint32(req[2:6], uint32(n))
	binary.BigEndian.PutUint32(req[6:10], ord)
	req = append(req, params...)
	rsp, err := c.T.Send(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", OrdinalName(ord), err)
	}
	body, err := proto.ParseResponse(rsp, proto.TagMgmtReq)
	if err != nil {
		var pe *proto.Error
		if errors.As(err, &pe) {
			return nil, &Error{Ordinal: ord, Code: pe.Code}
		}
		return nil, fmt.Errorf("%s: %w", OrdinalName(ord), err)
	}
	return body, nil
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// noBody checks that an ordinal without response parameters sent none.
func noBody(ord uint32, p []byte) error {
	if len(p) != 0 {
		return fmt.Errorf("%s: %d unexpected response bytes", OrdinalName(ord), len(p))
	}
	return nil
}

// GroupList lists the manager's group IDs (ascending).
func (c Client) GroupList() ([]uint32, error) {
	p, err := c.call(proto.OrdGroupList, nil)
	if err != nil {
		return nil, err
	}
	return DecodeGroupList(p)
}

// GroupNew registers SAA key pub: as group 0's key if the manager has no
// SAA key yet, else as a new group. It returns the group's UUID and ID.
func (c Client) GroupNew(pub saa.PublicKey) (uuid [16]byte, id uint32, err error) {
	if pub.IsZero() {
		return uuid, 0, errors.New("GROUP_NEW: no SAA key")
	}
	req := append(make([]byte, caDigestSize), pub.Bytes()...)
	p, err := c.call(proto.OrdGroupNew, req)
	if err != nil {
		return uuid, 0, err
	}
	return DecodeGroupNew(p)
}

// GroupDel deletes group id (it must have no vTPMs, and not be group 0).
func (c Client) GroupDel(id uint32) error {
	p, err := c.call(proto.OrdGroupDel, u32(id))
	if err != nil {
		return err
	}
	return noBody(proto.OrdGroupDel, p)
}

// GroupUpdate installs a signed configuration list in group id. The list
// is checked to parse first: a malformed one never leaves dom0.
func (c Client) GroupUpdate(id uint32, signedList []byte) error {
	if _, err := saa.ParseList(signedList); err != nil {
		return fmt.Errorf("GROUP_UPDATE: %w", err)
	}
	p, err := c.call(proto.OrdGroupUpdate, append(u32(id), signedList...))
	if err != nil {
		return err
	}
	return noBody(proto.OrdGroupUpdate, p)
}

// GroupShow describes group id.
func (c Client) GroupShow(id uint32) (*GroupInfo, error) {
	p, err := c.call(proto.OrdGroupShow, u32(id))
	if err != nil {
		return nil, err
	}
	return DecodeGroupShow(p)
}

// GroupCACert returns the DER certificate of group id's EK CA, which
// signs its vTPMs' EK certificates (the manager makes the CA at the first
// need).
func (c Client) GroupCACert(id uint32) (*x509.Certificate, error) {
	p, err := c.call(proto.OrdGroupCACert, u32(id))
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(p)
	if err != nil {
		return nil, fmt.Errorf("GROUP_CA_CERT: the answer is not a certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("GROUP_CA_CERT: the answer is not a CA certificate")
	}
	return cert, nil
}

// VTPMList lists the UUIDs of group's vTPMs, paging through VTPM_LIST
// until it has the total the manager reports.
func (c Client) VTPMList(group uint32) ([][16]byte, error) {
	var all [][16]byte
	for {
		p, err := c.call(proto.OrdVTPMList, append(u32(group), u32(uint32(len(all)))...))
		if err != nil {
			return nil, err
		}
		total, page, err := DecodeVTPMList(p)
		if err != nil {
			return nil, err
		}
		if len(all) > 0 && len(page) > 0 && bytes.Compare(page[0][:], all[len(all)-1][:]) <= 0 {
			return nil, errors.New("VTPM_LIST: the group's vTPMs changed while they were listed; try again")
		}
		all = append(all, page...)
		switch {
		case uint64(len(all)) == uint64(total):
			return all, nil
		case uint64(len(all)) > uint64(total):
			return nil, fmt.Errorf("VTPM_LIST: %d UUIDs received but the manager reports %d", len(all), total)
		case len(page) == 0:
			return nil, fmt.Errorf("VTPM_LIST: an empty page at offset %d of %d", len(all), total)
		}
	}
}

// VTPMNew creates a vTPM in group: with the given UUID, or one the
// manager chooses if uuid is nil. It returns the UUID.
func (c Client) VTPMNew(group uint32, uuid *[16]byte) ([16]byte, error) {
	req := u32(group)
	if uuid != nil {
		req = append(req, uuid[:]...)
	}
	p, err := c.call(proto.OrdVTPMNew, req)
	if err != nil {
		return [16]byte{}, err
	}
	return DecodeVTPMNew(p)
}

// VTPMDel deletes the vTPM uuid and its secrets (its domain must not be
// connected).
func (c Client) VTPMDel(uuid [16]byte) error {
	p, err := c.call(proto.OrdVTPMDel, uuid[:])
	if err != nil {
		return err
	}
	return noBody(proto.OrdVTPMDel, p)
}

// FormatUUID is the canonical 8-4-4-4-12 form.
func FormatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ParseUUID reads the canonical form (any case) or 32 bare hex digits.
func ParseUUID(s string) ([16]byte, error) {
	var u [16]byte
	h := s
	if len(s) == 36 {
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return u, fmt.Errorf("UUID %q: want 8-4-4-4-12 hex digits", s)
		}
		h = strings.ReplaceAll(s, "-", "")
	}
	if len(h) != 32 {
		return u, fmt.Errorf("UUID %q: want 8-4-4-4-12 hex digits", s)
	}
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, fmt.Errorf("UUID %q: %w", s, err)
	}
	return u, nil
}
