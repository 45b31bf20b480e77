package lxchelper

import (
	"encoding/json"
	"os"
	"path/filepath"

	"ctrfs/ops/network"
)

// HoldFile records in a container's LXC directory that the daemon holds it
// (ops/hold.go): frozen, and off its bridges. A helper whose daemon died
// reads it to put the container back on the wire (releaseHeld).
const HoldFile = "ctrfs-held.json"

// Hold is what HoldFile says.
type Hold struct {
	Purpose string             `json:"purpose"` // the operation: stop-stateful, check or move
	Links   []network.HostLink `json:"links"`
}

// HoldPath is the HoldFile of the container name.
func HoldPath(lxcpath, name string) string {
	return filepath.Join(lxcpath, name, HoldFile)
}

// ReadHold reads the container's hold, or nil if it has none.
func ReadHold(lxcpath, name string) *Hold {
	data, err := os.ReadFile(HoldPath(lxcpath, name))
	if err != nil {
		return nil
	}
	var h Hold
	if json.Unmarshal(data, &h) != nil {
		h = Hold{Purpose: "unknown"}
	}
	return &h
}

// releaseHeld puts a held container whose helper's daemon died back on
// its bridges, once it has been thawed: the container runs on at once, as
// it did before there were holds, and the next daemon finds no hold.
func releaseHeld(lxcpath, name string) {
	h := ReadHold(lxcpath, name)
	if h == nil {
		return
	}
	if network.Reattach(h.Links) == nil {
		os.Remove(HoldPath(lxcpath, name))
	}
}
