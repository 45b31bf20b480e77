package fs

import (
	"errors"
	"syscall"

	"ctrfs/ops"
)

// errno maps an ops error to the errno of docs/ctrfs.5.md's table.
func errno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ops.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, ops.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, ops.ErrExists):
		return syscall.EEXIST
	case errors.Is(err, ops.ErrBusy):
		return syscall.EBUSY
	case errors.Is(err, ops.ErrUnsupported):
		return syscall.EOPNOTSUPP
	case errors.Is(err, ops.ErrUnreachable):
		return syscall.EHOSTUNREACH
	case errors.Is(err, ops.ErrDenied):
		return syscall.EPERM
	default:
		return syscall.EIO
	}
}
