package members

import (
	"os/exec"
	"sort"
	"sync"
)

// restoreFeatures are the kernel features, as CRIU names them (`criu check
// --feature NAME`), that a restore uses when the dump found them in use: a
// target lacking one that the source has may be sent a container it cannot
// bring back. They replace "the target's kernel must be at least as new",
// which refused every move to an older kernel, the way back after an
// upgrade included (issue 20). Features CRIU uses only to dump (pagemap_scan,
// get_rseq_conf, overlayfs_maps, breakpoints...) or falls back from on its
// own at restore (clone3_set_tid, move_mount_set_group) are not here: a
// kernel without them still restores what a kernel with them dumped.
var restoreFeatures = []string{
	"timens",                   // a time namespace (lxc.time.offset.*)
	"userns",                   // unprivileged containers
	"memfd_hugetlb",            // hugetlb memfds
	"ipv6_freebind",            // IPv6 sockets bound with IPV6_FREEBIND
	"sockopt_buf_lock",         // SO_BUF_LOCK on sockets
	"tun",                      // tun/tap devices
	"autofs",                   // autofs mounts
	"compat_cr",                // 32-bit tasks
	"apparmor_stacking",        // AppArmor namespaces and stacked profiles
	"timer_cr_ids",             // POSIX timers recreated with their ids
	"pagemap_scan_guard_pages", // guard regions (MADV_GUARD_INSTALL)
}

// kernelFeatures are the restoreFeatures this host's kernel has, sorted.
// The kernel does not change while the daemon runs, so they are probed
// once, each check in parallel (a check takes some 50 ms).
var kernelFeatures = sync.OnceValue(func() []string {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		have []string
	)
	for _, name := range restoreFeatures {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if exec.Command("criu", "check", "--feature", name).Run() == nil {
				mu.Lock()
				have = append(have, name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Strings(have)
	return have
})

// missingFeatures are the features the source has that the target lacks.
func missingFeatures(source, target []string) []string {
	have := map[string]bool{}
	for _, f := range target {
		have[f] = true
	}
	var missing []string
	for _, f := range source {
		if !have[f] {
			missing = append(missing, f)
		}
	}
	return missing
}
