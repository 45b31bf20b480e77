package cluster

import "ctrfs/cluster/transport"

// What cmd/ctrfs asks of the cluster without a Cluster: `ctrfs probe`'s
// call of an endpoint, and the check of a secret file (cluster/transport
// holds both).

// MinSecretLen is the shortest cluster secret accepted.
const MinSecretLen = transport.MinSecretLen

// SecretHelp says how to make a secret, for the messages that refuse one.
const SecretHelp = transport.SecretHelp

// CheckSecret refuses a cluster secret that is too short or too regular
// to be random bytes (transport.CheckSecret).
func CheckSecret(secret []byte) error { return transport.CheckSecret(secret) }

// Probe connects to a migration endpoint with the secret, as a migration
// does, and asks the host for its facts: it fails if the host does not
// answer or does not hold the same secret.
func Probe(endpoint string, secret []byte) (Facts, error) {
	a, err := transport.NewAuth(secret)
	if err != nil {
		return Facts{}, err
	}
	client, err := transport.Dial(endpoint, a)
	if err != nil {
		return Facts{}, err
	}
	defer client.Close()
	var f Facts
	return f, transport.CallError(endpoint, client.Call("Host.Facts", true, &f))
}
