package transport

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net/rpc"
)

// maxMessage bounds one gob message of the migration protocol. The largest
// the protocol sends are a batch of chunks (batchBytes plus one chunk) and
// the manifests of an install; gob alone accepts a message of up to 8 GiB
// and holds it whole in memory, so one peer could make this daemon hold
// that much per connection.
const maxMessage = 256 << 20

var errMessageTooBig = fmt.Errorf("cluster: a message of the migration protocol is larger than %d bytes", maxMessage)

// frameLimiter passes a gob stream through, failing at the length prefix
// of a message longer than max, before gob reads (and allocates) its body.
// Every gob message is its length as a gob unsigned integer (one byte below
// 128, or a negated byte count and that many big-endian bytes), then the
// message.
type frameLimiter struct {
	r      *bufio.Reader
	max    uint64
	prefix []byte // of the next message, not yet passed on
	left   uint64 // bytes of the current message not yet passed on
}

func newFrameLimiter(r io.Reader, max uint64) *frameLimiter {
	return &frameLimiter{r: bufio.NewReader(r), max: max}
}

func (f *frameLimiter) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if f.left == 0 && len(f.prefix) == 0 {
		if err := f.readPrefix(); err != nil {
			return 0, err
		}
	}
	if len(f.prefix) > 0 {
		n := copy(p, f.prefix)
		f.prefix = f.prefix[n:]
		return n, nil
	}
	if uint64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= uint64(n)
	return n, err
}

func (f *frameLimiter) readPrefix() error {
	b, err := f.r.ReadByte()
	if err != nil {
		return err
	}
	prefix := []byte{b}
	size := uint64(b)
	if b >= 0x80 {
		n := int(-int8(b))
		if n > 8 {
			return errors.New("cluster: malformed message length")
		}
		size = 0
		for i := 0; i < n; i++ {
			c, err := f.r.ReadByte()
			if err != nil {
				return noEOF(err)
			}
			prefix = append(prefix, c)
			size = size<<8 | uint64(c)
		}
	}
	if size > f.max {
		return errMessageTooBig
	}
	f.prefix, f.left = prefix, size
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// gobCodec is net/rpc's gob codec, both sides, reading through a
// frameLimiter.
type gobCodec struct {
	rwc    io.ReadWriteCloser
	dec    *gob.Decoder
	enc    *gob.Encoder
	encBuf *bufio.Writer
}

func newGobCodec(conn io.ReadWriteCloser) *gobCodec {
	buf := bufio.NewWriter(conn)
	return &gobCodec{rwc: conn, dec: gob.NewDecoder(newFrameLimiter(conn, maxMessage)), enc: gob.NewEncoder(buf), encBuf: buf}
}

// serverCodec and clientCodec serve and call the migration endpoint
// through gobCodec.
type serverCodec struct{ *gobCodec }
type clientCodec struct{ *gobCodec }

// NewServerCodec serves the migration endpoint on conn.
func NewServerCodec(conn io.ReadWriteCloser) rpc.ServerCodec { return serverCodec{newGobCodec(conn)} }
func newClientCodec(conn io.ReadWriteCloser) rpc.ClientCodec { return clientCodec{newGobCodec(conn)} }

func (c serverCodec) ReadRequestHeader(r *rpc.Request) error { return c.dec.Decode(r) }
func (c serverCodec) ReadRequestBody(body any) error         { return c.dec.Decode(body) }
func (c serverCodec) WriteResponse(r *rpc.Response, body any) error {
	return c.write(r, body)
}

func (c clientCodec) WriteRequest(r *rpc.Request, body any) error { return c.write(r, body) }
func (c clientCodec) ReadResponseHeader(r *rpc.Response) error    { return c.dec.Decode(r) }
func (c clientCodec) ReadResponseBody(body any) error             { return c.dec.Decode(body) }

func (c *gobCodec) write(header, body any) error {
	if err := c.enc.Encode(header); err != nil {
		c.Close()
		return err
	}
	if err := c.enc.Encode(body); err != nil {
		c.Close()
		return err
	}
	return c.encBuf.Flush()
}

func (c *gobCodec) Close() error { return c.rwc.Close() }
