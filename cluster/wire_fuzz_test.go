package cluster

import (
	"bytes"
	"encoding/gob"
	"io"
	"net/rpc"
	"strings"
	"testing"

	"ctrfs/cluster/transport"
	"ctrfs/images"
	"ctrfs/ops"
)

// requests encodes calls as a source sends them.
func requests(t testing.TB, calls ...any) []byte {
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	for i := 0; i+1 < len(calls); i += 2 {
		if err := enc.Encode(&rpc.Request{ServiceMethod: calls[i].(string), Seq: uint64(i)}); err != nil {
			t.Fatal(err)
		}
		if err := enc.Encode(calls[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// bodies are what each method of the endpoint decodes its argument into.
var bodies = map[string]func() any{
	"Host.Facts": func() any { return new(bool) }, "Host.List": func() any { return new(bool) },
	"Host.Begin": func() any { return new(BeginArgs) }, "Host.Missing": func() any { return new(MissingArgs) },
	"Host.Put": func() any { return new(PutArgs) }, "Host.Install": func() any { return new(InstallArgs) },
	"Host.Commit": func() any { return new(CommitArgs) }, "Host.Abort": func() any { return new(string) },
	"Host.Owner": func() any { return new(OwnerArgs) }, "Host.Pull": func() any { return new(PullArgs) },
}

// FuzzRequestDecode: no bytes from a peer crash the endpoint's decoding of
// requests, and none makes it read a message larger than transport's maxMessage.
func FuzzRequestDecode(f *testing.F) {
	mf := &images.Manifest{Version: 1, Files: []images.File{{Name: "a", Size: 1, Chunks: []images.Chunk{{Hash: strings.Repeat("ab", 32), Size: 1}}}}}
	f.Add(requests(f, "Host.Begin", BeginArgs{Name: "c1", Source: "dakara"},
		"Host.Missing", MissingArgs{Token: "t", Hashes: []string{strings.Repeat("ab", 32)}},
		"Host.Put", PutArgs{Token: "t", Chunks: []WireChunk{{Hash: "h", Data: []byte("zstd")}}},
		"Host.Install", InstallArgs{Token: "t", Rootfs: mf, Items: map[string]*images.Manifest{"state/c1": mf}, Start: true},
		"Host.Commit", CommitArgs{Token: "t", Report: []ops.KeyValue{{Key: "move-mode", Value: "live"}}},
		"Host.Owner", OwnerArgs{Name: "c1", Token: "t"}, "Host.Abort", "t", "Host.Facts", true))
	f.Add(requests(f, "Host.Pull", PullArgs{Name: "c1", To: "tollana"}))
	f.Add([]byte{0xfc, 0x7f, 0xff, 0xff, 0xff}) // a message of 2 GiB
	f.Add([]byte{0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		// A connection that reads data and discards what is written.
		conn := struct {
			io.Reader
			io.Writer
			io.Closer
		}{bytes.NewReader(data), io.Discard, io.NopCloser(nil)}
		codec := transport.NewServerCodec(conn)
		for i := 0; i < 16; i++ {
			var req rpc.Request
			if err := codec.ReadRequestHeader(&req); err != nil {
				return
			}
			body := any(nil)
			if newBody, ok := bodies[req.ServiceMethod]; ok {
				body = newBody()
			}
			if err := codec.ReadRequestBody(body); err != nil {
				return
			}
		}
	})
}
