// Package transport is how hosts of the cluster reach each other's
// migration endpoint: TLS 1.3 and the proofs of the cluster secret
// (auth.go), the keys derived from the secret and its checks (secret.go),
// net/rpc over a gob codec of bounded frames (wire.go), connections that
// fail when a peer goes silent (silence.go), and errors that keep their
// kind across the wire (here). It holds no state but an Auth's keys and
// TLS configs. It knows nothing of the cluster's members, of moves or of
// the calls made over it: what a peer may call is cluster's Service.
package transport

import (
	"errors"
	"fmt"
	"net/rpc"
	"strings"

	"ctrfs/ops"
)

// The migration endpoint speaks net/rpc over TLS 1.3, after both sides
// have proven they hold the cluster secret (auth.go): a peer without it
// gets no request read, and everything after is encrypted.

// Dial connects to a peer's endpoint; both sides have proven the secret
// when it returns.
func Dial(endpoint string, a *Auth) (*rpc.Client, error) {
	conn, err := a.dial(endpoint)
	if err != nil {
		return nil, err
	}
	return rpc.NewClientWithCodec(newClientCodec(limitSending(conn))), nil
}

// WireError is what an endpoint's method returns for err: errors cross
// the wire as "kind: message" so that the caller gets the same errno the
// other host's operation had.
func WireError(err error) error {
	if err == nil {
		return nil
	}
	for name, kind := range ops.Kinds {
		if errors.Is(err, kind) {
			return errors.New(name + ": " + err.Error())
		}
	}
	return errors.New("failed: " + err.Error())
}

// CallError turns what an RPC returned into an ops error: the peer's own
// error with its kind, or EHOSTUNREACH for a broken connection.
func CallError(peer string, err error) error {
	if err == nil {
		return nil
	}
	var se rpc.ServerError
	if errors.As(err, &se) {
		name, msg, _ := strings.Cut(string(se), ": ")
		if kind, ok := ops.Kinds[name]; ok {
			return ops.NewError(kind, msg)
		}
		return ops.NewError(ops.ErrFailed, string(se))
	}
	return ops.NewError(ops.ErrUnreachable, fmt.Sprintf("lost %s: %v", peer, err))
}
