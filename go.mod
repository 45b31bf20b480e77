module ctrfs

go 1.25.0

replace github.com/lxc/go-lxc => /usr/share/gocode/src/gopkg.in/lxc/go-lxc.v2

require (
	github.com/checkpoint-restore/go-criu/v7 v7.2.0
	github.com/hanwen/go-fuse/v2 v2.12.1
	github.com/klauspost/compress v1.20.4
	github.com/lxc/go-lxc v0.0.0
	google.golang.org/protobuf v1.36.12
)

require golang.org/x/sys v0.47.0
