package transport

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// peerSilence is how long a connection to a peer's endpoint may go
// unanswered before it fails. A peer whose host dies (power cut, kernel
// panic, a VM killed) sends no reset: without a limit the source of a move
// waited on its connection until TCP gave up, some 16 minutes on the bed
// (issue 20), its container running but the command hung. TCP's own
// acknowledgements answer within it even from a loaded host, so the limit
// is on the peer's kernel, not on how fast its daemon works.
const peerSilence = 40 * time.Second

// peerDialer dials a peer's endpoint: keepalives find a dead peer on an
// idle connection, TCP_USER_TIMEOUT one that stops acknowledging data.
func peerDialer() *net.Dialer {
	return &net.Dialer{
		Timeout: dialTimeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: peerSilence / 4, Interval: peerSilence / 8, Count: 6,
		},
		Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			if cerr := c.Control(func(fd uintptr) {
				err = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(peerSilence/time.Millisecond))
			}); cerr != nil {
				return cerr
			}
			return err
		},
	}
}
