package cluster

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"ctrfs/ops"
)

// A move's figures travel as the key-value lines of `info` (the source's
// report, which the target completes in Service.Commit): durations as
// seconds with three decimals.

// addSeconds adds d to the values of keys in report, which are seconds.
func addSeconds(report []ops.KeyValue, d time.Duration, keys ...string) {
	for i, kv := range report {
		if !slices.Contains(keys, kv.Key) {
			continue
		}
		if v, err := strconv.ParseFloat(kv.Value, 64); err == nil {
			report[i].Value = fmt.Sprintf("%.3f", v+d.Seconds())
		}
	}
}

func seconds(key string, d time.Duration) ops.KeyValue {
	return ops.KeyValue{Key: key, Value: fmt.Sprintf("%.3f", d.Seconds())}
}
