package fs

import (
	"slices"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// ReservedNames are the names of the tree's fixed entries, which no
// container may take (ops.Config.ReservedNames). Where a container's name
// and a fixed entry share a directory the entry hides the container
// (containers/hosts, hosts/PEER/info); and any fixed name may become an
// entry of a directory that lists containers (hosts/THIS-HOST/ could
// show info or ctl as the root does). They are read from the entries
// themselves, so that the list cannot drift from the tree.
func ReservedNames() []string {
	var names []string
	for _, list := range [][]fuse.DirEntry{rootEntries, peerEntries, containerEntries, {containerStateEntry}} {
		for _, e := range list {
			names = append(names, e.Name)
		}
	}
	names = append(names, hostsLinkName)
	slices.Sort(names)
	return slices.Compact(names)
}
