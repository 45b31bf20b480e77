package cluster

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

// dial connects to a peer's endpoint; both sides have proven the secret
// when it returns.
func dial(endpoint string, a *endpointAuth) (*rpc.Client, error) {
	conn, err := a.dial(endpoint)
	if err != nil {
		return nil, err
	}
	return rpc.NewClientWithCodec(newClientCodec(conn)), nil
}

// Errors cross the wire as "kind: message" so that the caller gets the
// same errno the other host's operation had.
func wireError(err error) error {
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

// callError turns what an RPC returned into an ops error: the peer's own
// error with its kind, or EHOSTUNREACH for a broken connection.
func callError(peer string, err error) error {
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

// Probe connects to a migration endpoint with the secret, as a migration
// does, and asks the host for its facts: it fails if the host does not
// answer or does not hold the same secret.
func Probe(endpoint string, secret []byte) (Facts, error) {
	a, err := newEndpointAuth(secret)
	if err != nil {
		return Facts{}, err
	}
	client, err := dial(endpoint, a)
	if err != nil {
		return Facts{}, err
	}
	defer client.Close()
	var f Facts
	return f, callError(endpoint, client.Call("Host.Facts", true, &f))
}
