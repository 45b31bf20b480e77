// Package critview decodes the CRIU images that ctrfs shows an operator:
// the process tree (ps) and CRIU's statistics (stats-dump, stats-restore),
// with go-criu's crit. It reads any fs.FS, a directory or a stored manifest
// (images.Store.FS), and knows nothing of the store, chunks or keys.
package critview

// Why go-criu v7 and not v8: v7.2.0's crit protobuf definitions track CRIU
// 3.19, but they decode the pstree.img and core-N.img written by CRIU 4.2.1
// on this machine correctly (see TestProcessTree). Protobuf keeps fields it
// does not know as unknown fields instead of failing: in those images that
// is 6 bytes of newer fields inside thread_core.creds of every core image,
// and fields 12 and 13 of inventory.img (plugins, dump_criu_run_id). None of
// them is needed here, so v8 (v8.3.0 on the proxy) was not needed either.
//
// crit's Decode only accepts an *os.File (it has no io.Reader variant), so
// each image is copied into an unlinked temporary file first. The images read
// here are a few KiB.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	criucore "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"google.golang.org/protobuf/proto"
)

// Process is one task of a checkpointed process tree. PIDs are as seen inside
// the container's PID namespace.
type Process struct {
	PID, PPID int
	Command   string // comm, at most 15 characters; "?" if the core image is absent
}

// ProcessTree lists the processes in a checkpoint, ordered by PID, from its
// pstree.img and core-PID.img files. Pass os.DirFS(dir) for an image
// directory or images.Store.FS(m) for a stored one.
func ProcessTree(fsys fs.FS) ([]Process, error) {
	img, err := decodeImage(fsys, "pstree.img", "PSTREE", &pstree.PstreeEntry{})
	if err != nil {
		return nil, err
	}
	var procs []Process
	for _, e := range img.Entries {
		pe := e.Message.(*pstree.PstreeEntry)
		p := Process{PID: int(pe.GetPid()), PPID: int(pe.GetPpid()), Command: "?"}
		name := fmt.Sprintf("core-%d.img", p.PID)
		core, err := decodeImage(fsys, name, "CORE", &criucore.CoreEntry{})
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Keep listing the rest; one absent core image
			// should not hide the whole tree.
		case err != nil:
			return nil, err
		case len(core.Entries) == 0:
			return nil, fmt.Errorf("images: %s: no entries", name)
		default:
			p.Command = core.Entries[0].Message.(*criucore.CoreEntry).GetTc().GetComm()
		}
		procs = append(procs, p)
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].PID < procs[j].PID })
	return procs, nil
}

// decodeImage decodes one CRIU image file with crit, checking its magic so a
// misnamed file is reported rather than misparsed.
func decodeImage(fsys fs.FS, name, magic string, entry proto.Message) (*crit.CriuImage, error) {
	src, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	tmp, err := os.CreateTemp("", "ctrfs-img-*")
	if err != nil {
		return nil, err
	}
	os.Remove(tmp.Name()) // the open descriptor keeps it readable
	defer tmp.Close()
	if _, err := io.Copy(tmp, src); err != nil {
		return nil, fmt.Errorf("images: %s: %w", name, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, err := crit.New(tmp, nil, "", false, false).Decode(entry)
	if err != nil {
		return nil, fmt.Errorf("images: %s: %w", name, err)
	}
	if img.Magic != magic {
		return nil, fmt.Errorf("images: %s: magic %s, want %s", name, img.Magic, magic)
	}
	return img, nil
}

// FormatPS renders processes like ps: a "PID PPID COMMAND" header, then one
// line per process with the numeric columns right-aligned.
func FormatPS(procs []Process) []byte {
	wPID, wPPID := len("PID"), len("PPID")
	for _, p := range procs {
		wPID = max(wPID, len(fmt.Sprint(p.PID)))
		wPPID = max(wPPID, len(fmt.Sprint(p.PPID)))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%*s %*s %s\n", wPID, "PID", wPPID, "PPID", "COMMAND")
	for _, p := range procs {
		fmt.Fprintf(&b, "%*d %*d %s\n", wPID, p.PID, wPPID, p.PPID, p.Command)
	}
	return b.Bytes()
}
