package idmap

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Range is one of root's ranges of subordinate ids: Count ids from Start.
type Range struct {
	Start, Count uint64
}

func (r Range) String() string { return fmt.Sprintf("%d:%d", r.Start, r.Count) }

func (r Range) holds(base uint64) bool {
	return r.Start <= base && base+Size <= r.Start+r.Count
}

// Ranges are root's ranges of a host, which peers compare a container's
// map with before a move: its rootfs is owned by host ids, and a target
// whose root has no range over them would hand those ids to someone else.
type Ranges struct {
	UID, GID []Range
}

// RootRanges are root's ranges in the files. A missing file is no range
// (nil, no error): the host has none to give.
func (f Files) RootRanges() (Ranges, error) {
	uid, err := rootRanges(f.UID)
	if err != nil {
		return Ranges{}, err
	}
	gid, err := rootRanges(f.GID)
	if err != nil {
		return Ranges{}, err
	}
	return Ranges{UID: uid, GID: gid}, nil
}

func rootRanges(path string) ([]Range, error) {
	es, err := readEntries(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Range
	for _, e := range es {
		if isRoot(e.name) {
			out = append(out, Range{e.start, e.count})
		}
	}
	return out, nil
}

// String is the ranges as hosts/PEER/info shows them:
// `u 1000000:1000000000, g 1000000:1000000000` ("none" for a kind
// without).
func (rs Ranges) String() string {
	return "u " + joinRanges(rs.UID) + ", g " + joinRanges(rs.GID)
}

func joinRanges(rs []Range) string {
	if len(rs) == 0 {
		return "none"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.String()
	}
	return strings.Join(s, " ")
}

// Holds says why a host with these ranges cannot give a container map m
// (one range must hold all of its uids, and one all of its gids), or nil
// if it can.
func (rs Ranges) Holds(m Map) error {
	var missing []string
	if !anyHolds(rs.UID, uint64(m.UID)) {
		missing = append(missing, fmt.Sprintf("its uids %d-%d (root's in /etc/subuid: %s)", m.UID, uint64(m.UID)+Size-1, joinRanges(rs.UID)))
	}
	if !anyHolds(rs.GID, uint64(m.GID)) {
		missing = append(missing, fmt.Sprintf("its gids %d-%d (root's in /etc/subgid: %s)", m.GID, uint64(m.GID)+Size-1, joinRanges(rs.GID)))
	}
	if missing == nil {
		return nil
	}
	return fmt.Errorf("root has no range that holds %s", strings.Join(missing, " nor "))
}

func anyHolds(rs []Range, base uint64) bool {
	for _, r := range rs {
		if r.holds(base) {
			return true
		}
	}
	return false
}
