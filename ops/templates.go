package ops

import (
	"fmt"
	"log/slog"

	"ctrfs/ops/templates"
)

// DefaultTemplate is the template `mkdir containers/NAME` uses.
func (m *Manager) DefaultTemplate() string {
	if m.cfg.DefaultTemplate != "" {
		return m.cfg.DefaultTemplate
	}
	return templates.DefaultName
}

// TemplateInfo is templates/NAME/info.
func (m *Manager) TemplateInfo(name string) ([]KeyValue, error) {
	t, err := templates.Lookup(name)
	if err != nil {
		return nil, newError(ErrNotFound, fmt.Sprintf("no template %q", name), nil)
	}
	def := "no"
	if name == m.DefaultTemplate() {
		def = "yes"
	}
	st := t.Status(templateEnv(m.cfg, m.log))
	kv := []KeyValue{{Key: "name", Value: t.Name}, {Key: "about", Value: t.About}, {Key: "default", Value: def}, {Key: "built", Value: st.Built}, {Key: "size", Value: st.Size}}
	if st.Archive != "" {
		kv = append(kv, KeyValue{Key: "source", Value: st.Source}, KeyValue{Key: "archive", Value: st.Archive})
	}
	return kv, nil
}

// templateEnv is what templates need of this daemon: where they keep what
// they build once, and its log.
func templateEnv(cfg Config, log *slog.Logger) templates.Env {
	return templates.Env{CacheDir: cfg.templateCacheDir(), Log: log}
}

func defaultTemplateCache(store string) string { return store + "/templates" }
