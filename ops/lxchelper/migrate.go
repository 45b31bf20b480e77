package lxchelper

/*
#cgo pkg-config: lxc
#include <stdlib.h>
#include <string.h>
#include <lxc/lxccontainer.h>

static int ctrfs_lxc_migrate(const char *name, const char *lxcpath, const char *logfile,
			     unsigned int cmd, char *dir, char *parent, bool stop)
{
	struct lxc_container *c = lxc_container_new(name, lxcpath);
	struct migrate_opts opts;
	int ret;

	if (!c)
		return -1;
	// LXC logs each container object's calls to that object's log.
	if (!c->set_config_item(c, "lxc.log.file", logfile) ||
	    !c->set_config_item(c, "lxc.log.level", "INFO")) {
		lxc_container_put(c);
		return -1;
	}
	memset(&opts, 0, sizeof(opts));
	opts.directory = dir;
	opts.predump_dir = parent;
	opts.stop = stop;
	ret = c->migrate(c, cmd, &opts, sizeof(opts));
	lxc_container_put(c);
	return ret;
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Why LXC's migrate call without go-lxc: go-lxc's Migrate (Debian 12's
// golang-gopkg-lxc-go-lxc.v2) refuses every container that is defined
// ("container already defined": it checks isNotDefined where it means
// isDefined), so its pre-dump and its dump over a pre-dump never reach
// LXC. This is the same call, with the options LXC's checkpoint call
// leaves zero also zero: the command line is exec_criu's either way.

// lxcMigrate is LXC's migrate call: MIGRATE_PRE_DUMP, or MIGRATE_DUMP
// (stopping the container if stop) over the images in parent, which LXC
// passes to CRIU as `--prev-images-dir PARENT --track-mem`. LXC logs to
// logFile at INFO, as Main has go-lxc's calls log.
func lxcMigrate(name, lxcpath, logFile string, preDump bool, dir, parent string, stop bool) error {
	cname, cpath, clog, cdir := C.CString(name), C.CString(lxcpath), C.CString(logFile), C.CString(dir)
	defer C.free(unsafe.Pointer(cname))
	defer C.free(unsafe.Pointer(cpath))
	defer C.free(unsafe.Pointer(clog))
	defer C.free(unsafe.Pointer(cdir))
	var cparent *C.char
	if parent != "" {
		cparent = C.CString(parent)
		defer C.free(unsafe.Pointer(cparent))
	}
	cmd := C.uint(C.MIGRATE_DUMP)
	if preDump {
		cmd = C.MIGRATE_PRE_DUMP
	}
	if C.ctrfs_lxc_migrate(cname, cpath, clog, cmd, cdir, cparent, C.bool(stop)) != 0 {
		if preDump {
			return errors.New("LXC's pre-dump failed")
		}
		return errors.New("LXC's dump failed")
	}
	return nil
}
