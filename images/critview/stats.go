package critview

import (
	"fmt"
	"io/fs"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
)

// Stats decodes CRIU's statistics image, "stats-dump" or "stats-restore",
// with crit. (go-criu's own stats package registers the same protobuf file
// as crit's and cannot be linked into one binary with it.)
func Stats(fsys fs.FS, name string) (*stats.StatsEntry, error) {
	img, err := decodeImage(fsys, name, "STATS", &stats.StatsEntry{})
	if err != nil {
		return nil, err
	}
	if len(img.Entries) == 0 {
		return nil, fmt.Errorf("images: %s: no entries", name)
	}
	return img.Entries[0].Message.(*stats.StatsEntry), nil
}
