package ops

import "ctrfs/ops/testhooks"

// PausePoint is testhooks.PausePoint for the packages above ops (cluster).
func PausePoint(step string, details ...string) { testhooks.PausePoint(step, details...) }
