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
	"strings"
	"sync"
	"time"
)

// writeCtl writes one command to a ctl file; the write returns when it has
// finished. errFile is the `error` file that says why it failed.
func writeCtl(ctl, cmd, errFile string) error {
	f, err := os.OpenFile(ctl, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("%s > %s: %w", cmd, ctl, err)
	}
	_, err = f.Write([]byte(cmd + "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		msg, _ := os.ReadFile(errFile)
		return fmt.Errorf("echo %s > %s: %w (error: %s)", cmd, ctl, err, strings.TrimSpace(string(msg)))
	}
	return nil
}

// containerCtl writes a command to containers/NAME/ctl of a mount.
func containerCtl(mount, name, cmd string) error {
	dir := filepath.Join(mount, "containers", name)
	return writeCtl(filepath.Join(dir, "ctl"), cmd, filepath.Join(dir, "error"))
}

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
			return containerCtl(mount, n, "start")
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
			dir := filepath.Join(m, "containers", n)
			st, err := os.ReadFile(filepath.Join(dir, "status"))
			if err != nil {
				continue
			}
			if strings.TrimSpace(string(st)) != "STOPPED" || readKV(filepath.Join(dir, "info"))["stateful"] == "yes" {
				if err := containerCtl(m, n, "stop"); err != nil {
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
