package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"ctrfs/cluster"
	"ctrfs/ops"
)

// Metrics (`serve --metrics ADDR`): operations are counted from the event
// stream, off the operations' own path; everything else is read when
// Prometheus scrapes, the store's usage as the last GC pass counted it
// unless the store changed since (images.Store.Usage).

// opDurations are the operations by kind and result with their durations:
// every `events` line but the `move-PHASE started` ones.
var opDurations = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "ctrfs_operation_duration_seconds",
	Help:    "Operations on containers (the events file's lines) by kind and result, and how long they took.",
	Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
}, []string{"op", "result"})

// collector reads the store, the containers and the cluster at scrape.
type collector struct {
	m  *ops.Manager
	cl *cluster.Cluster

	containers, members                    *prometheus.Desc
	chunks, stored, logical, unique, dedup *prometheus.Desc
	manifests, sent                        *prometheus.Desc
	gcRuns, gcSeconds                      *prometheus.Desc
}

func newCollector(m *ops.Manager, cl *cluster.Cluster) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ctrfs_"+name, help, labels, nil)
	}
	return &collector{m: m, cl: cl,
		containers: d("containers", "Containers of this host by status.", "status"),
		members:    d("cluster_members", "Hosts of the cluster, this one included, by status.", "status"),
		chunks:     d("store_chunks", "Chunks in the image store."),
		stored:     d("store_stored_bytes", "Compressed bytes of the chunks in the image store."),
		logical:    d("store_logical_bytes", "Bytes of the saved state and snapshots the store holds, as if each were stored alone and uncompressed."),
		unique:     d("store_unique_bytes", "Uncompressed bytes of the distinct chunks the store's manifests name."),
		dedup:      d("store_dedup_ratio", "Logical over unique bytes: what sharing chunks saves, before compression."),
		manifests:  d("store_manifests", "Saved states, snapshots and other manifests in the store."),
		sent:       d("migration_sent_bytes_total", "Compressed chunk bytes sent to peers by migrations."),
		gcRuns:     d("store_gc_runs_total", "Garbage collection passes of the image store since the daemon started."),
		gcSeconds:  d("store_gc_last_seconds", "How long the last garbage collection pass of the image store took."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	byStatus := map[string]float64{"RUNNING": 0, "STOPPED": 0, "FROZEN": 0}
	if names, err := c.m.List(); err == nil {
		for _, n := range names {
			if st, err := c.m.Status(n); err == nil {
				byStatus[st]++
			}
		}
	}
	for st, n := range byStatus {
		gauge(c.containers, n, st)
	}
	members := map[string]float64{"alive": 1, "suspect": 0, "dead": 0} // this host
	for _, p := range c.cl.Peers() {
		members[p.Status]++
	}
	for st, n := range members {
		gauge(c.members, n, st)
	}
	if u, err := c.m.StoreUsage(); err == nil {
		gauge(c.chunks, float64(u.Chunks))
		gauge(c.stored, float64(u.StoredBytes))
		gauge(c.logical, float64(u.LogicalBytes))
		gauge(c.unique, float64(u.UniqueBytes))
		gauge(c.dedup, u.DedupRatio())
		gauge(c.manifests, float64(u.ManifestCount))
	}
	ch <- prometheus.MustNewConstMetric(c.sent, prometheus.CounterValue, float64(c.cl.SentBytes()))
	runs, last := c.m.GCStats()
	ch <- prometheus.MustNewConstMetric(c.gcRuns, prometheus.CounterValue, float64(runs))
	gauge(c.gcSeconds, last.Seconds())
}

// serveMetrics serves /metrics on addr until the listener is closed.
func serveMetrics(addr string, m *ops.Manager, cl *cluster.Cluster, log *slog.Logger) (*http.Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(opDurations, newCollector(m, cl),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics: server stopped", "err", err)
		}
	}()
	sub := m.Events().Subscribe()
	go func() {
		for {
			ev, ok := sub.Next(context.Background())
			if !ok {
				return
			}
			if ev.Result != "started" {
				opDurations.WithLabelValues(ev.What, ev.Result).Observe(ev.Seconds)
			}
		}
	}()
	return srv, nil
}
