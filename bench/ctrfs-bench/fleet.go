package main

// Helpers of the parts that work on many small containers (evacuate.go,
// scale.go): busybox containers of the default template, made and
// destroyed through the mount, several at once.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"ctrfs/internal/tree"
)

// containerDir is containers/NAME of a mount.
func containerDir(mount, name string) string { return filepath.Join(mount, "containers", name) }

// parallel runs fn for each of items, workers at a time, and returns the
// first error.
func parallel(items []string, workers int, fn func(string) error) error {
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func(it string) {
			defer func() { <-sem; wg.Done() }()
			if err := fn(it); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}(it)
	}
	wg.Wait()
	return first
}

// createContainers makes the named containers on a mount, started if run.
func createContainers(mount string, names []string, run bool) error {
	return parallel(names, 4, func(n string) error {
		if err := os.Mkdir(filepath.Join(mount, "containers", n), 0o755); err != nil {
			return fmt.Errorf("mkdir containers/%s: %w", n, err)
		}
		if run {
			return tree.Ctl(containerDir(mount, n), "start")
		}
		return nil
	})
}

// growContainers makes containers named by format and their number until
// *names has n, on mount, started if run; *names gets each it tried, for
// the cleanup to find. It returns the new ones.
func growContainers(names *[]string, n int, format, mount string, run bool) ([]string, error) {
	var more []string
	for i := len(*names); i < n; i++ {
		more = append(more, fmt.Sprintf(format, i))
	}
	*names = append(*names, more...)
	return more, createContainers(mount, more, run)
}

// destroyContainers stops and removes the named containers wherever they
// are among mounts; names that are on none are skipped.
func destroyContainers(mounts []string, names []string) {
	parallel(names, 4, func(n string) error {
		for _, m := range mounts {
			dir := containerDir(m, n)
			st, err := tree.Status(dir)
			if err != nil {
				continue
			}
			if st != "STOPPED" || tree.Info(dir)["stateful"] == "yes" {
				if err := tree.Ctl(dir, "stop"); err != nil {
					fmt.Fprintln(os.Stderr, "ctrfs-bench: cleanup:", err)
				}
			}
			if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintln(os.Stderr, "ctrfs-bench: cleanup:", err)
			}
		}
		return nil
	})
}

// spreadOf is the min, median and max of a sample, in seconds.
type spreadOf struct{ min, med, max float64 }

func spreadOfDurations(d []time.Duration) spreadOf {
	v := make([]float64, len(d))
	for i, x := range d {
		v[i] = x.Seconds()
	}
	return spreadOfFloats(v)
}

func spreadOfFloats(v []float64) spreadOf {
	if len(v) == 0 {
		return spreadOf{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return spreadOf{s[0], median(s), s[len(s)-1]}
}

func (s spreadOf) ms() string {
	return fmt.Sprintf("%.1f / %.1f / %.1f", s.min*1000, s.med*1000, s.max*1000)
}

func (s spreadOf) secs() string {
	return fmt.Sprintf("%.2f / %.2f / %.2f", s.min, s.med, s.max)
}
