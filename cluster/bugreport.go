package cluster

import (
	"fmt"

	"ctrfs/cluster/transport"
	"ctrfs/ops"
)

// peerReportLimit bounds the bug report a peer sends: a report is logs
// and a few system files, and a peer must not make this host take more.
const peerReportLimit = 8 << 20

// BugReport is containers/NAME/bugreport: this host's report on the
// container and, when its last operation was a move that failed, the
// target's under peer-HOST/ (or, if the target cannot be asked, why not
// in peer-HOST/error).
func (c *Cluster) BugReport(name string) ([]byte, error) {
	files := c.m.BugReportFiles(name)
	c.mu.Lock()
	target := c.lastMoves[name]
	c.mu.Unlock()
	if op, failed := c.m.LastOp(name); op == "move" && failed && target != "" {
		prefix := "peer-" + target + "/"
		peer, err := c.peerBugReport(target, name)
		if err != nil {
			files = append(files, ops.ReportFile{Name: prefix + "error", Data: []byte(err.Error() + "\n")})
		}
		for _, f := range peer {
			files = append(files, ops.ReportFile{Name: prefix + f.Name, Data: f.Data})
		}
	}
	return ops.BugReportArchive(files)
}

func (c *Cluster) peerBugReport(host, name string) ([]ops.ReportFile, error) {
	client, _, err := c.connect(host)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	var files []ops.ReportFile
	if err := transport.CallError(host, client.Call("Host.BugReport", name, &files)); err != nil {
		return nil, err
	}
	size := 0
	for i, f := range files {
		if size += len(f.Data); size > peerReportLimit {
			return files[:i], fmt.Errorf("the report of %s was cut at %d bytes", host, peerReportLimit)
		}
	}
	return files, nil
}

// BugReport answers a peer whose move of a container here failed: this
// host's report on that name, bounded by peerReportLimit.
func (s *Service) BugReport(name string, out *[]ops.ReportFile) error {
	if err := ops.ValidateName(name); err != nil {
		return transport.WireError(err)
	}
	size := 0
	for _, f := range s.c.m.BugReportFiles(name) {
		if size += len(f.Data); size > peerReportLimit {
			break
		}
		*out = append(*out, f)
	}
	return nil
}
