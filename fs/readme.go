package fs

const readme = `ctrfs: LXC containers as directories

  host                this host's name
  events              one line per operation, from the moment you open it:
                      TIME HOST CONTAINER WHAT RESULT SECONDS
  ctl                 write a host command: create NAME [--template T] [--privileged],
                      evacuate [HOST] (move every container away; EIO if any move failed)
  error               why the last host command (or mkdir containers/NAME) failed
                      (empty after a success)
  templates/NAME/info the templates a container can be made from
  containers/NAME/    one directory per container
    ctl               write one command; the write returns when it is done;
                      read it for the list of commands
    status            RUNNING | STOPPED | FROZEN
    info              key: value lines; while an operation runs: op, phase, progress
    config            the LXC config (writable while STOPPED; applied at close
                      if LXC loads it, else close fails with EINVAL)
    criu              extra CRIU options, one a line: OPTION, dump: OPTION, restore: OPTION
    error             why the last command failed (empty after a success)
    log               the LXC/CRIU log of the last start, checkpoint or restore
    bugreport         a tar.gz for a CRIU/LXC bug report (and the peer's, after a failed move)
    state/            saved state after stop-stateful: CRIU's image files, and ps
    snapshots/NAME/   snapshots: info, and state/ for stateful ones
  containers/hosts -> ../hosts
  hosts/HOST/         this host and its peers (info, and their containers'
                      status and info); mv a container there to migrate it

Commands for ctl:
  start | stop | stop-stateful | restart | freeze | unfreeze
  snapshot NAME [--stateful] | restore NAME | move HOST [--post-copy | --full-dumps]
  check               would stop-stateful, snapshot --stateful and move work? (EOPNOTSUPP: see error)
  convert             make a stopped privileged container unprivileged (its rootfs shifted)

Also: mkdir containers/NAME (create from the default template), rmdir containers/NAME (destroy a
stopped container), mv containers/A containers/B (rename a stopped one),
mkdir/rmdir containers/NAME/snapshots/SNAP (stateless snapshot / delete),
mv containers/NAME hosts/PEER/ (migrate: live if running, cold if stopped),
mv hosts/PEER/NAME containers/ (pull it here). Nothing else removes:
unlink, chmod, chown, touch and truncation of control files are EPERM, so
rm -r, find -delete or mv to another filesystem fail and destroy nothing.
Only root acts; config and criu (0600), log, bugreport and the files of
state/ (0400) are root's alone to read.

Errors: EINVAL bad command, name (or a name of the tree's: hosts, info,
ctl, ...) or config, ENOENT no such thing, EEXIST name taken, EBUSY
another operation is under way or the state does not allow it,
EOPNOTSUPP the target host cannot take it (or check found blockers),
EHOSTUNREACH the peer does not answer, EIO the operation failed (see error
and log), EACCES not root, EPERM not a change the tree takes, EFBIG a
config over 1 MiB.

Everything in full: man 5 ctrfs (the tree), man 8 ctrfs (the daemon).
`
