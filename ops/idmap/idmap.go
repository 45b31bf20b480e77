// Package idmap is the id map of an unprivileged container: the range of
// host uids and gids that its ids 0-65535 stand for (lxc.idmap), where that
// range comes from (root's entries in /etc/subuid and /etc/subgid), and the
// shift of a rootfs into it. Every unprivileged container of a host shares
// one map, as LXD's do unless security.idmap.isolated: a container moves
// only to a host that can give it the same map, and with one map per host
// that is a range check. It knows nothing of LXC beyond the config lines.
package idmap

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Size is how many ids a container's map holds: 0-65535, every id a
// Debian system uses (nobody is 65534).
const Size = 65536

// Map maps a container's uids 0..Size-1 to UID.. on the host, and its gids
// to GID..
type Map struct {
	UID, GID uint32
}

// ConfigLines are the container's lxc.idmap lines.
func (m Map) ConfigLines() string {
	return fmt.Sprintf("lxc.idmap = u 0 %d %d\nlxc.idmap = g 0 %d %d\n", m.UID, Size, m.GID, Size)
}

// String is the map as info shows it: `u 0 1000000 65536, g 0 1000000 65536`.
func (m Map) String() string {
	return fmt.Sprintf("u 0 %d %d, g 0 %d %d", m.UID, Size, m.GID, Size)
}

// FromConfig reads the map of a container's LXC config: ok is false when
// the config has no lxc.idmap line (a privileged container). A map ctrfs
// does not make (several ranges, another size) is an error: info shows it
// and the operations that need the map refuse it.
func FromConfig(config []byte) (m Map, ok bool, err error) {
	var uid, gid bool
	sc := bufio.NewScanner(bytes.NewReader(config))
	for sc.Scan() {
		k, v, found := strings.Cut(sc.Text(), "=")
		if !found || strings.TrimSpace(k) != "lxc.idmap" {
			continue
		}
		ok = true
		f := strings.Fields(v)
		if len(f) != 4 || f[1] != "0" || f[3] != strconv.Itoa(Size) {
			return Map{}, true, fmt.Errorf("lxc.idmap %q is not one range of %d ids from 0", strings.TrimSpace(v), Size)
		}
		base, perr := strconv.ParseUint(f[2], 10, 32)
		if perr != nil {
			return Map{}, true, fmt.Errorf("lxc.idmap %q: %v", strings.TrimSpace(v), perr)
		}
		switch {
		case f[0] == "u" && !uid:
			m.UID, uid = uint32(base), true
		case f[0] == "g" && !gid:
			m.GID, gid = uint32(base), true
		default:
			return Map{}, true, fmt.Errorf("lxc.idmap %q: a second %s range", strings.TrimSpace(v), f[0])
		}
	}
	if ok && !(uid && gid) {
		return Map{}, true, fmt.Errorf("lxc.idmap maps only uids or only gids")
	}
	return m, ok, nil
}
