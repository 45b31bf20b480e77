package main

// Figures as the tables print them: medians, spreads, bytes.

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
)

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func bytesOrNA(n int64) string {
	if n < 0 {
		return "n/a"
	}
	return strconv.FormatInt(n, 10)
}

func bytesMiB(n int64) string {
	if n < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%d (%.1f MiB)", n, float64(n)/(1<<20))
}

// spread is "min/median/max" of seconds, or n/a if any is unknown (< 0).
func spread(v []float64) string {
	if len(v) == 0 || slices.Min(v) < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f/%.3f/%.3f", slices.Min(v), median(v), slices.Max(v))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianInt(v []int64) int64 {
	f := make([]float64, len(v))
	for i, x := range v {
		f[i] = float64(x)
	}
	return int64(median(f))
}
