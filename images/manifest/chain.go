package manifest

import "strings"

// Why chains: CRIU's pre-dump writes only the pages dirtied since the
// round before, and marks the others as in its parent, a directory it
// finds through a `parent` entry of its images directory (criu/image.c
// open_parent). A dump so made restores only with its parents beside it.
// Its manifest therefore holds the parents' files too, each under
// "parent/" once per generation ("parent/parent/pages-1.img"), and Export
// writes them into real subdirectories, which CRIU opens as it opens the
// symlink it made on the dumping host.

// ParentDir is the entry through which CRIU finds a dump's parent images.
const ParentDir = "parent"

// Chain is own's files with parent's (which may be a chain itself) under
// ParentDir: a dump and the images its pages are in. A nil parent is own.
func Chain(own, parent *Manifest) *Manifest {
	c := own.Clone()
	if parent != nil {
		c.Files = append(c.Files, AsParent(parent).Files...)
	}
	return c
}

// AsParent is m's files under ParentDir: what a target can unpack ahead
// of a dump whose parent m is, so that the dump then adds only its own.
func AsParent(m *Manifest) *Manifest {
	c := m.Clone()
	c.Files = nil
	for _, f := range m.Files {
		f.Name = ParentDir + "/" + f.Name
		c.Files = append(c.Files, f)
	}
	return c
}

// Chained says whether m holds parent images: CRIU must then read them
// from a directory (Export), not from a stream, which has no parent.
func (m *Manifest) Chained() bool {
	for _, f := range m.Files {
		if strings.HasPrefix(f.Name, ParentDir+"/") {
			return true
		}
	}
	return false
}

// validPathName is a file name, or one under ParentDir once or more:
// nothing else may name a directory, so that Export writes only below its
// own.
func validPathName(name string) bool {
	for {
		rest, ok := strings.CutPrefix(name, ParentDir+"/")
		if !ok {
			return validFileName(name)
		}
		name = rest
	}
}
