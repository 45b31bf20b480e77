package network

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// HostLink is the host's end of one of a container's veth pairs, and the
// bridge it was attached to.
type HostLink struct {
	Name   string `json:"name"`
	Master string `json:"master"`
}

// Isolate takes the container whose init is pid off the wire: the host's
// end of each of its veth pairs leaves its bridge. Nothing reaches the
// container's kernel from then on, so a frozen container's TCP stack
// acknowledges no data that a copy restored elsewhere would never see.
//
// The links stay up: a veth whose peer is down loses its carrier, the
// kernel then marks the container's routes `linkdown`, CRIU dumps them
// so, and `ip route restore` refuses them at the restore ("Invalid
// rtm_flags - can not contain DEAD or LINKDOWN").
//
// It returns the links it detached, for Reattach; on an error those it
// had detached are attached again.
func Isolate(pid int) ([]HostLink, error) {
	peers, err := containerPeers(pid)
	if err != nil {
		return nil, err
	}
	var host []struct {
		Index  int    `json:"ifindex"`
		Name   string `json:"ifname"`
		Master string `json:"master"`
	}
	if err := ipJSON(&host, "ip", "-j", "link", "show"); err != nil {
		return nil, err
	}
	var done []HostLink
	for _, h := range host {
		if !peers[h.Index] || h.Master == "" {
			continue
		}
		if err := ipLink(h.Name, "nomaster"); err != nil {
			Reattach(done)
			return nil, err
		}
		done = append(done, HostLink{Name: h.Name, Master: h.Master})
	}
	return done, nil
}

// Reattach puts links back on their bridges (undoes Isolate). A link that
// no longer exists (its container died) is skipped.
func Reattach(links []HostLink) error {
	var errs []string
	for _, l := range links {
		if exec.Command("ip", "link", "show", "dev", l.Name).Run() != nil {
			continue
		}
		if err := ipLink(l.Name, "master", l.Master); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// containerPeers are the host's interface indexes of the peers of the
// veths in pid's network namespace.
func containerPeers(pid int) (map[int]bool, error) {
	var links []struct {
		Peer int `json:"link_index"`
	}
	if err := ipJSON(&links, "nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", pid), "ip", "-j", "link", "show", "type", "veth"); err != nil {
		return nil, err
	}
	out := map[int]bool{}
	for _, l := range links {
		out[l.Peer] = true
	}
	return out, nil
}

func ipJSON(v any, cmd ...string) error {
	out, err := exec.Command(cmd[0], cmd[1:]...).Output()
	if err != nil {
		return fmt.Errorf("%s: %w", strings.Join(cmd, " "), err)
	}
	return json.Unmarshal(out, v)
}

func ipLink(name string, args ...string) error {
	out, err := exec.Command("ip", append([]string{"link", "set", "dev", name}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip link set dev %s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
