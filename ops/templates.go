package ops

import (
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"
)

// Template is one kind of container that ctrfs can create. Each template's
// rootfs and config are made checkpointable (see shared/ENVIRONMENT.md):
// every container it makes can stop-stateful, snapshot and move live.
type Template struct {
	Name  string
	About string // one line for templates/NAME/info
	// rootfs makes the rootfs of a new container in dir (which does not
	// exist yet); it may first build what the template caches.
	rootfs func(m *Manager, dir, container string) error
	// config sets the template's own LXC config keys over the busybox
	// config that every template starts from.
	config map[string]string
	// status is what templates/NAME/info says of the template's build:
	// when it was built and its size.
	status func(m *Manager) []KeyValue
}

// templates are the templates by name.
var templates = map[string]*Template{
	busyboxTemplate.Name: busyboxTemplate,
	debianTemplate.Name:  debianTemplate,
}

// DefaultTemplateName is the template of `mkdir containers/NAME` unless
// `serve --template` says otherwise.
const DefaultTemplateName = "busybox"

var busyboxTemplate = &Template{
	Name:  "busybox",
	About: "a busybox-static rootfs, made at each create from the host's " + busyboxPath + ", with a counter service on port 8080",
	rootfs: func(m *Manager, dir, container string) error {
		return writeRootfs(dir)
	},
	status: func(m *Manager) []KeyValue {
		size := ""
		if fi, err := os.Stat(busyboxPath); err == nil {
			size = fmt.Sprint(fi.Size())
		}
		return []KeyValue{{"built", "at each create"}, {"size", size}}
	},
}

// TemplateNames lists the templates, sorted.
func TemplateNames() []string {
	var names []string
	for n := range templates {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupTemplate finds a template by name; an unknown one is ErrInvalid.
func LookupTemplate(name string) (*Template, error) {
	if t, ok := templates[name]; ok {
		return t, nil
	}
	return nil, newError(ErrInvalid, fmt.Sprintf("no template %q; the templates are %s",
		name, strings.Join(TemplateNames(), ", ")), nil)
}

// DefaultTemplate is the template `mkdir containers/NAME` uses.
func (m *Manager) DefaultTemplate() string {
	if m.cfg.DefaultTemplate != "" {
		return m.cfg.DefaultTemplate
	}
	return DefaultTemplateName
}

// TemplateInfo is templates/NAME/info.
func (m *Manager) TemplateInfo(name string) ([]KeyValue, error) {
	t, err := LookupTemplate(name)
	if err != nil {
		return nil, newError(ErrNotFound, fmt.Sprintf("no template %q", name), nil)
	}
	def := "no"
	if name == m.DefaultTemplate() {
		def = "yes"
	}
	kv := []KeyValue{{"name", t.Name}, {"about", t.About}, {"default", def}}
	return append(kv, t.status(m)...), nil
}

// templateCacheDir is where templates keep what they build once.
func (m *Manager) templateCacheDir() string { return m.cfg.templateCacheDir() }

func defaultTemplateCache(store string) string { return store + "/templates" }

// configFor is the LXC config of a new container of template t.
func configFor(t *Template, name, rootfs string, net Network, addr netip.Addr, mac string, created time.Time) []byte {
	conf := templateConfig(name, rootfs, net, addr, mac, created)
	keys := make([]string, 0, len(t.config))
	for k := range t.config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		conf = setConfigLine(conf, k, t.config[k])
	}
	return append(conf, fmt.Sprintf("%s %s\n", templateComment, t.Name)...)
}

// templateComment names the template in the config, for the operator.
const templateComment = "# ctrfs.template ="
