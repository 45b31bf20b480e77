package transport

import "testing"

// TestPageServerSeed: the CA of a move's page server is the same on both
// hosts of the move, and another move's, or another cluster's, differs.
func TestPageServerSeed(t *testing.T) {
	secret, other := randomSecret(t), randomSecret(t)
	seed := func(secret []byte, token string) string {
		s, err := PageServerSeed(secret, token)
		if err != nil {
			t.Fatal(err)
		}
		return string(s)
	}
	if seed(secret, "t1") != seed(secret, "t1") {
		t.Error("two hosts of one move derive different seeds")
	}
	if seed(secret, "t1") == seed(secret, "t2") || seed(secret, "t1") == seed(other, "t1") {
		t.Error("another move or another secret derives the same seed")
	}
}
