package templates

import (
	"os"
	"strings"
)

// systemdProfile is the AppArmor profile the debian template's containers
// run under where the kernel has AppArmor on. LXC's default there,
// lxc-container-default-cgns, denies the mounts with which systemd sets
// up its services' sandboxing (the rbind of / at /run/systemd/unit-root
// for ProtectSystem=, PrivateTmp= ...): systemd-logind failed ("Failed to
// set up mount namespacing: Permission denied") and the container was
// degraded on every stock Debian host (issue 20). This profile, which
// Debian's LXC ships and loads (/etc/apparmor.d/lxc/lxc-default-with-nesting),
// allows those mounts: bind mounts, rbinds below /run/systemd/unit-root,
// proc there (and the mounts a nested container needs). "generated", the
// default of Debian's /etc/lxc/default.conf, would allow every mount, and
// LXC 5.0.2 cannot restore a container under it (it hands CRIU the word
// "generated" as the profile: "can't write lsm profile"). A named profile
// is restored as it was dumped.
const systemdProfile = "lxc-container-default-with-nesting"

// apparmorEnabledFile says whether the kernel has AppArmor on ("Y").
var apparmorEnabledFile = "/sys/module/apparmor/parameters/enabled"

// hostConfig are the keys a template's container gets on this host only:
// the AppArmor profile where the kernel has AppArmor (LXC refuses any
// lxc.apparmor key where it has not).
func hostConfig(systemd bool) map[string]string {
	if !systemd {
		return nil
	}
	b, err := os.ReadFile(apparmorEnabledFile)
	if err != nil || strings.TrimSpace(string(b)) != "Y" {
		return nil
	}
	return map[string]string{"lxc.apparmor.profile": systemdProfile}
}
