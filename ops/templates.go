package ops

import (
	"fmt"

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
	st := t.Status(m.templateEnv())
	kv := []KeyValue{{"name", t.Name}, {"about", t.About}, {"default", def}, {"built", st.Built}, {"size", st.Size}}
	if st.Archive != "" {
		kv = append(kv, KeyValue{"source", st.Source}, KeyValue{"archive", st.Archive})
	}
	return kv, nil
}

// templateEnv is what templates need of this daemon: where they keep what
// they build once, and its log.
func (m *Manager) templateEnv() templates.Env {
	return templates.Env{CacheDir: m.cfg.templateCacheDir(), Log: m.log}
}

func defaultTemplateCache(store string) string { return store + "/templates" }
