package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"ctrfs/images"
	"ctrfs/ops"
)

// How a move's chunks travel: the source asks the target which of a set
// of chunks it lacks (Host.Missing) and sends only those (Host.Put), as
// stored (zstd-compressed), in batches several at once.

// packAndSend packs the rootfs and sends it with the saved state and
// snapshots.
func (mg *migration) packAndSend(ctx context.Context) error {
	// A test holds the move here, longer than the target's sessionIdle.
	ops.PausePoint("move-pack-rootfs")
	rootfs, err := mg.o.PackRootfs(ctx)
	if err != nil {
		return err
	}
	items, err := mg.o.Items(ctx)
	if err != nil {
		return err
	}
	return mg.sendContainer(rootfs, items)
}

// sendContainer sends the chunks of rootfs and items that the target
// lacks; then it has them all, and they are what it is to install.
func (mg *migration) sendContainer(rootfs *images.Manifest, items map[string]*images.Manifest) error {
	seen := map[string]bool{}
	var hashes []string
	for _, mf := range append([]*images.Manifest{rootfs}, values(items)...) {
		for _, h := range mf.Hashes() {
			if !seen[h] {
				seen[h] = true
				hashes = append(hashes, h)
			}
		}
	}
	if err := mg.sendChunks(hashes); err != nil {
		return err
	}
	mg.rootfs, mg.items = rootfs, items
	return nil
}

// sendFrozen is sendContainer after the freeze: the dump's chunks go
// while the rootfs changes since the precopy are archived, then the rest.
// The dump is the saved state that stop-stateful made or, for a
// post-copy move, state: its lazy dump's images. How long it took goes
// into a pre-copy move's report of its downtime (migration.report).
func (mg *migration) sendFrozen(ctx context.Context, state *images.Manifest) error {
	t := time.Now()
	items, err := mg.o.Items(ctx)
	if err != nil {
		return err
	}
	if state != nil {
		items["state"] = state
	}
	sending := make(chan error, 1)
	go func() {
		if mf := items["state"]; mf != nil {
			sending <- mg.sendChunks(mf.Hashes())
			return
		}
		sending <- nil
	}()
	p := time.Now()
	rootfs, err := mg.o.PackRootfs(ctx)
	packed := time.Since(p)
	if serr := <-sending; err == nil {
		err = serr
	}
	if err == nil {
		err = mg.sendContainer(rootfs, items)
	}
	mg.timings = append(mg.timings, seconds("freeze-send-seconds", time.Since(t)), seconds("freeze-pack-seconds", packed))
	return err
}

func values(m map[string]*images.Manifest) []*images.Manifest {
	out := make([]*images.Manifest, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// Chunks go in batches of about batchBytes, several batches in flight, so
// that reading, the network and the target's writing overlap.
const (
	batchBytes = 8 << 20
	inFlight   = 4
)

func (mg *migration) sendChunks(hashes []string) error {
	var missing []string
	if err := mg.call("Host.Missing", MissingArgs{Token: mg.token, Hashes: hashes}, &missing); err != nil {
		return err
	}
	store := mg.o.Store()
	var expected int64
	for _, h := range missing {
		expected += store.ChunkSize(h)
	}
	mg.o.Sending(expected)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		slots    = make(chan struct{}, inFlight)
	)
	send := func(batch []WireChunk) {
		defer wg.Done()
		defer func() { <-slots }()
		var n int
		err := mg.call("Host.Put", PutArgs{Token: mg.token, Chunks: batch}, &n)
		mu.Lock()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		mg.sent += int64(n)
		mu.Unlock()
		mg.o.Sent(int64(n))
		mg.c.sentBytes.Add(int64(n))
	}
	var batch []WireChunk
	size := 0
	for i, h := range missing {
		data, err := store.ReadChunk(h)
		if err != nil {
			wg.Wait()
			return ops.NewError(ops.ErrFailed, fmt.Sprintf("read chunk %s: %v", h, err))
		}
		batch = append(batch, WireChunk{Hash: h, Data: data})
		size += len(data)
		if size >= batchBytes || i == len(missing)-1 {
			slots <- struct{}{}
			mu.Lock()
			failed := firstErr != nil
			mu.Unlock()
			if failed {
				<-slots
				break
			}
			wg.Add(1)
			go send(batch)
			batch, size = nil, 0
		}
	}
	wg.Wait()
	return firstErr
}
