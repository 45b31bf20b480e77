// Package errkind holds the kinds of error that ops and its packages
// return: every error they give their callers wraps one of the kinds
// below, so that errors.Is finds it, with a message for the `error` file.
// fs/ turns each kind into the errno of docs/ctrfs.5.md (fs/errno.go), and
// cluster/ sends it between hosts by its name (Kinds). It knows nothing of
// containers, FUSE or errnos.
package errkind

import "errors"

// Error kinds. fs/ maps each to the errno of docs/ctrfs.5.md; everything else
// returned by ops is wrapped so that errors.Is finds one of these.
var (
	ErrInvalid     = errors.New("invalid")               // EINVAL
	ErrNotFound    = errors.New("not found")             // ENOENT
	ErrExists      = errors.New("already exists")        // EEXIST
	ErrBusy        = errors.New("busy")                  // EBUSY
	ErrUnsupported = errors.New("not supported")         // EOPNOTSUPP
	ErrUnreachable = errors.New("host unreachable")      // EHOSTUNREACH
	ErrFailed      = errors.New("operation failed")      // EIO
	ErrDenied      = errors.New("operation not allowed") // EPERM
)

// kindError carries a readable message for the `error` file and a kind for
// the errno; the message never repeats the kind's own text.
type kindError struct {
	kind error
	msg  string
	err  error
}

func (e *kindError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *kindError) Is(target error) bool { return target == e.kind }
func (e *kindError) Unwrap() error        { return e.err }

// New builds an error of the given kind; cause may be nil.
func New(kind error, msg string, cause error) error {
	return &kindError{kind: kind, msg: msg, err: cause}
}

// Kinds are the error kinds by the names they travel under between hosts.
var Kinds = map[string]error{
	"invalid": ErrInvalid, "notfound": ErrNotFound, "exists": ErrExists, "busy": ErrBusy,
	"unsupported": ErrUnsupported, "unreachable": ErrUnreachable, "failed": ErrFailed, "denied": ErrDenied,
}
