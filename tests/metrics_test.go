package tests

import (
	"fmt"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches and parses the daemon's metrics.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// metric is the value of the sample of family with the given labels (a
// histogram's count), or -1 if there is none.
func metric(fams map[string]*dto.MetricFamily, family string, labels ...string) float64 {
	f, ok := fams[family]
	if !ok {
		return -1
	}
	for _, m := range f.GetMetric() {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// TestMetrics: `serve --metrics ADDR` serves Prometheus metrics whose
// operation counts, store figures and container counts follow a
// stop-stateful and a start.
func TestMetrics(t *testing.T) {
	addr := fmt.Sprintf("%s:%d", loopback(1), nextPort.Add(2))
	url := "http://" + addr + "/metrics"
	d := StartDaemon(t, "dakara", "--metrics", addr)
	d.CreateRunning("c1")
	const ops = "ctrfs_operation_duration_seconds"
	waitFor(t, "the start to be counted", func() bool {
		return metric(scrape(t, url), ops, "op", "start", "result", "ok") == 1
	})
	before := scrape(t, url)
	if n := metric(before, "ctrfs_containers", "status", "RUNNING"); n != 1 {
		t.Errorf("RUNNING containers: %v", n)
	}
	if n := metric(before, ops, "op", "stop-stateful", "result", "ok"); n > 0 {
		t.Errorf("stop-stateful counted %v times before any", n)
	}
	if n := metric(before, "ctrfs_cluster_members", "status", "alive"); n != 1 {
		t.Errorf("alive cluster members of a lone host: %v", n)
	}

	d.MustSh("echo stop-stateful > containers/c1/ctl")
	waitFor(t, "the stop-stateful to be counted", func() bool {
		return metric(scrape(t, url), ops, "op", "stop-stateful", "result", "ok") == 1
	})
	stopped := scrape(t, url)
	if n := metric(stopped, "ctrfs_containers", "status", "STOPPED"); n != 1 {
		t.Errorf("STOPPED containers after stop-stateful: %v", n)
	}
	chunks, stored := metric(stopped, "ctrfs_store_chunks"), metric(stopped, "ctrfs_store_stored_bytes")
	if chunks <= metric(before, "ctrfs_store_chunks") || stored <= metric(before, "ctrfs_store_stored_bytes") {
		t.Errorf("store after a checkpoint: %v chunks, %v bytes; before: %v, %v", chunks, stored,
			metric(before, "ctrfs_store_chunks"), metric(before, "ctrfs_store_stored_bytes"))
	}
	if r := metric(stopped, "ctrfs_store_dedup_ratio"); r < 1 {
		t.Errorf("dedup ratio %v", r)
	}
	if sent := metric(stopped, "ctrfs_migration_sent_bytes_total"); sent != 0 {
		t.Errorf("sent bytes without a move: %v", sent)
	}

	d.MustSh("echo start > containers/c1/ctl")
	d.ShFails("echo bogus > containers/c1/ctl", "Invalid argument")
	waitFor(t, "the restore and the failure to be counted", func() bool {
		after := scrape(t, url)
		return metric(after, ops, "op", "start", "result", "ok") == 2 &&
			metric(after, ops, "op", "unknown-command", "result", "failed") == 1 &&
			metric(after, "ctrfs_containers", "status", "RUNNING") == 1
	})
	d.MustSh("echo stop > containers/c1/ctl")
}
