package transport

import (
	"bytes"
	"errors"
	"io"
	"net/rpc"
	"testing"
)

// rwc is a connection that reads from a fixed input and discards writes.
type rwc struct{ io.Reader }

func (rwc) Write(p []byte) (int, error) { return len(p), nil }
func (rwc) Close() error                { return nil }

// A message whose length prefix is over maxMessage fails at the prefix:
// its body is never read, so never held.
func TestFrameLimiterRefusesBigMessage(t *testing.T) {
	big := []byte{0xfc, 0x10, 0x00, 0x00, 0x01} // 256 MiB + 1, as gob writes it
	body := &countingReader{}
	codec := NewServerCodec(rwc{io.MultiReader(bytes.NewReader(big), body)})
	var req rpc.Request
	if err := codec.ReadRequestHeader(&req); !errors.Is(err, errMessageTooBig) {
		t.Fatalf("a message of %d bytes: %v", maxMessage+1, err)
	}
	if body.n != 0 {
		t.Fatalf("read %d bytes of its body", body.n)
	}
	// One of maxMessage bytes is read.
	ok := newFrameLimiter(io.MultiReader(bytes.NewReader([]byte{0xfc, 0x10, 0x00, 0x00, 0x00}), io.LimitReader(body, maxMessage)), maxMessage)
	if n, err := io.Copy(io.Discard, ok); err != nil || n != maxMessage+5 {
		t.Fatalf("a message of %d bytes: read %d, %v", maxMessage, n, err)
	}
}

type countingReader struct{ n int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
