package ops

import "ctrfs/ops/errkind"

// The error kinds (ops/errkind), under the names fs/ and cluster/ know
// them by: the same values, so that errors.Is matches either.
var (
	ErrInvalid     = errkind.ErrInvalid     // EINVAL
	ErrNotFound    = errkind.ErrNotFound    // ENOENT
	ErrExists      = errkind.ErrExists      // EEXIST
	ErrBusy        = errkind.ErrBusy        // EBUSY
	ErrUnsupported = errkind.ErrUnsupported // EOPNOTSUPP
	ErrUnreachable = errkind.ErrUnreachable // EHOSTUNREACH
	ErrFailed      = errkind.ErrFailed      // EIO
	ErrDenied      = errkind.ErrDenied      // EPERM
)

// newError builds an error of the given kind; cause may be nil.
func newError(kind error, msg string, cause error) error { return errkind.New(kind, msg, cause) }

// NewError makes an error of one of the kinds above, for errors that arrive
// from another host.
func NewError(kind error, msg string) error { return errkind.New(kind, msg, nil) }

// Kinds are the error kinds by the names they travel under between hosts.
var Kinds = errkind.Kinds
