package ops

import lxc "github.com/lxc/go-lxc"

// Replaced by the images/ integration.
func (m *Manager) dropStoreData(name string) error               { return nil }
func (m *Manager) renameStoreData(oldName, newName string) error { return nil }
func (m *Manager) storeInfo(name string) []KeyValue {
	return []KeyValue{{"snapshots", "0"}, {"stateful", "no"}}
}
func restoreContainer(c *lxc.Container, dir string) error { return nil }
