package testsuite

// Static checks of the deployment files: docker-compose.yml, the worker's
// Dockerfile and the example worker configuration it mounts. Nothing here
// needs Docker; the files are parsed and cross-checked against the repo.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"gopkg.in/yaml.v3"

	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/workflows"
)

// composeSearchAttributeNames are the custom search attributes the stack
// must register; their types come from workflows.SearchAttributeTypes, which
// the workflows upsert.
var composeSearchAttributeNames = []string{
	"OrganizationCode", "MigrationPhase", "Wave",
	"MailboxesTotal", "MailboxesDone", "MailboxesFailed", "BytesCopied",
	"CutoverApprovedBy", "Consistency", "MigrationPaused",
}

// composeCLITypes maps index types to `temporal operator search-attribute
// create --type` names.
var composeCLITypes = map[enumspb.IndexedValueType]string{
	enumspb.INDEXED_VALUE_TYPE_TEXT:         "Text",
	enumspb.INDEXED_VALUE_TYPE_KEYWORD:      "Keyword",
	enumspb.INDEXED_VALUE_TYPE_INT:          "Int",
	enumspb.INDEXED_VALUE_TYPE_DOUBLE:       "Double",
	enumspb.INDEXED_VALUE_TYPE_BOOL:         "Bool",
	enumspb.INDEXED_VALUE_TYPE_DATETIME:     "Datetime",
	enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
}

// composeSQLVisibilityColumns is how many custom search attributes of each
// type a namespace can have on SQL visibility (PostgreSQL here): the server's
// preallocated columns (sadefs.defaultNumDBCustomSearchAttributes).
var composeSQLVisibilityColumns = map[string]int{
	"Text": 3, "Keyword": 10, "Int": 3, "Double": 3, "Bool": 3, "Datetime": 3, "KeywordList": 3,
}

// composeAzuriteDevKey is the account key Azurite publishes for its
// development account devstoreaccount1; it is the only credential allowed
// inline in the compose file.
const composeAzuriteDevKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string              `yaml:"image"`
	Build       composeBuild        `yaml:"build"`
	Command     composeCommand      `yaml:"command"`
	Entrypoint  composeCommand      `yaml:"entrypoint"`
	Environment composeEnvironment  `yaml:"environment"`
	Ports       []composePort       `yaml:"ports"`
	Volumes     []composeVolume     `yaml:"volumes"`
	DependsOn   composeDependsOn    `yaml:"depends_on"`
	Healthcheck *composeHealthcheck `yaml:"healthcheck"`
	Profiles    []string            `yaml:"profiles"`
	Deploy      struct {
		Replicas *int `yaml:"replicas"`
	} `yaml:"deploy"`
}

type composeHealthcheck struct {
	Test composeCommand `yaml:"test"`
}

// composeBuild accepts `build: path` and `build: {context, dockerfile}`.
type composeBuild struct {
	Context    string
	Dockerfile string
	set        bool
}

func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	b.set = true
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	var v struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	}
	if err := n.Decode(&v); err != nil {
		return err
	}
	b.Context, b.Dockerfile = v.Context, v.Dockerfile
	return nil
}

// composeCommand accepts the string and the list form; Text joins a list
// with spaces.
type composeCommand struct {
	Args []string
	Text string
}

func (c *composeCommand) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		c.Text = n.Value
		c.Args = []string{n.Value}
	case yaml.SequenceNode:
		if err := n.Decode(&c.Args); err != nil {
			return err
		}
		c.Text = strings.Join(c.Args, " ")
	default:
		return fmt.Errorf("line %d: command must be a string or a list", n.Line)
	}
	return nil
}

// composeEnvironment accepts the map and the "KEY=value" list form.
type composeEnvironment map[string]string

func (e *composeEnvironment) UnmarshalYAML(n *yaml.Node) error {
	out := composeEnvironment{}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			out[n.Content[i].Value] = n.Content[i+1].Value
		}
	case yaml.SequenceNode:
		var items []string
		if err := n.Decode(&items); err != nil {
			return err
		}
		for _, it := range items {
			k, v, _ := strings.Cut(it, "=")
			out[k] = v
		}
	default:
		return fmt.Errorf("line %d: environment must be a map or a list", n.Line)
	}
	*e = out
	return nil
}

// composePort accepts "[ip:]published:target[/proto]" and the long syntax.
type composePort struct {
	Host      string // the host address it is published on, "" for all
	Published string
	Target    string
}

func (p *composePort) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var v struct {
			Target    string `yaml:"target"`
			Published string `yaml:"published"`
		}
		if err := n.Decode(&v); err != nil {
			return err
		}
		p.Target, p.Published = v.Target, v.Published
		return nil
	}
	s, _, _ := strings.Cut(n.Value, "/")
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 1:
		p.Target = parts[0]
	case 2:
		p.Published, p.Target = parts[0], parts[1]
	case 3:
		p.Host, p.Published, p.Target = parts[0], parts[1], parts[2]
	default:
		return fmt.Errorf("line %d: cannot parse port %q", n.Line, n.Value)
	}
	return nil
}

// composeVolume accepts "source:target[:mode]" and the long syntax.
type composeVolume struct {
	Source   string
	Target   string
	ReadOnly bool
}

func (v *composeVolume) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var l struct {
			Source   string `yaml:"source"`
			Target   string `yaml:"target"`
			ReadOnly bool   `yaml:"read_only"`
		}
		if err := n.Decode(&l); err != nil {
			return err
		}
		v.Source, v.Target, v.ReadOnly = l.Source, l.Target, l.ReadOnly
		return nil
	}
	parts := strings.Split(n.Value, ":")
	switch len(parts) {
	case 1:
		v.Target = parts[0]
	case 2:
		v.Source, v.Target = parts[0], parts[1]
	case 3:
		v.Source, v.Target = parts[0], parts[1]
		v.ReadOnly = strings.Contains(parts[2], "ro")
	default:
		return fmt.Errorf("line %d: cannot parse volume %q", n.Line, n.Value)
	}
	return nil
}

// composeDependsOn accepts the list and the map-with-condition form.
type composeDependsOn map[string]string // service -> condition ("" for the list form)

func (d *composeDependsOn) UnmarshalYAML(n *yaml.Node) error {
	out := composeDependsOn{}
	switch n.Kind {
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, s := range names {
			out[s] = ""
		}
	case yaml.MappingNode:
		var m map[string]struct {
			Condition string `yaml:"condition"`
		}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for s, c := range m {
			out[s] = c.Condition
		}
	default:
		return fmt.Errorf("line %d: depends_on must be a list or a map", n.Line)
	}
	*d = out
	return nil
}

// composeRepoRoot finds the module root (the directory holding go.mod).
func composeRepoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "go.mod not found above the test directory")
		dir = parent
	}
}

func composeLoad(t *testing.T) (root string, cf composeFile) {
	t.Helper()
	root = composeRepoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &cf), "docker-compose.yml does not parse")
	require.NotEmpty(t, cf.Services, "docker-compose.yml has no services")
	return root, cf
}

// composeInitService returns the name of the service whose command creates
// search attributes.
func composeInitService(cf composeFile) (string, error) {
	var found []string
	for name, svc := range cf.Services {
		if strings.Contains(svc.Entrypoint.Text+" "+svc.Command.Text, "search-attribute create") {
			found = append(found, name)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("want exactly one service running `temporal operator search-attribute create`, found %v", found)
	}
	return found[0], nil
}

var (
	composeSACreateFlags = regexp.MustCompile(`--(name|type)[ =]+["']?([A-Za-z0-9_]+)`)
	composeShellSplit    = regexp.MustCompile(`\n|;|&&|\|\|`)
	composeGoBuildWorker = regexp.MustCompile(`(^|\s)\./worker(\s|$)`)
	composeGoBuildOutput = regexp.MustCompile(`-o\s+(\S+)`)
)

// composeCreatedSearchAttributes extracts name -> type from every
// `search-attribute create` invocation in a shell script.
func composeCreatedSearchAttributes(script string) map[string]string {
	out := map[string]string{}
	script = strings.ReplaceAll(script, "\\\n", " ")
	for _, line := range composeShellSplit.Split(script, -1) {
		if !strings.Contains(line, "search-attribute create") {
			continue
		}
		var name, typ string
		for _, m := range composeSACreateFlags.FindAllStringSubmatch(line, -1) {
			if m[1] == "name" {
				name = m[2]
			} else {
				typ = m[2]
			}
		}
		if name != "" {
			out[name] = typ
		}
	}
	return out
}

// composePublishes reports whether svc publishes container port target on
// host port published.
func composePublishes(svc composeService, published, target string) bool {
	for _, p := range svc.Ports {
		if p.Target == target && p.Published == published {
			return true
		}
	}
	return false
}

func TestComposeServices(t *testing.T) {
	_, cf := composeLoad(t)
	for _, name := range []string{"postgresql", "temporal", "temporal-ui", "azurite", "worker"} {
		_, ok := cf.Services[name]
		assert.True(t, ok, "service %q missing", name)
	}
	initName, err := composeInitService(cf)
	require.NoError(t, err)

	assert.True(t, composePublishes(cf.Services["temporal"], "7233", "7233"), "temporal must publish 7233")
	assert.True(t, composePublishes(cf.Services["temporal-ui"], "8080", "8080"), "temporal-ui must publish 8080")
	assert.True(t, composePublishes(cf.Services["azurite"], "10000", "10000"), "azurite must publish 10000")

	pg := cf.Services["postgresql"]
	require.NotNil(t, pg.Healthcheck, "postgresql needs a healthcheck")
	assert.Contains(t, pg.Healthcheck.Test.Text, "pg_isready")
	assert.Equal(t, "service_healthy", cf.Services["temporal"].DependsOn["postgresql"],
		"temporal must wait for a healthy postgresql")
	assert.Equal(t, "temporal:7233", cf.Services["temporal-ui"].Environment["TEMPORAL_ADDRESS"])
	assert.Contains(t, cf.Services["azurite"].Command.Text, "--skipApiVersionCheck",
		"azblob sends an API version newer than Azurite knows")

	w := cf.Services["worker"]
	require.NotNil(t, w.Deploy.Replicas, "worker needs deploy.replicas")
	assert.GreaterOrEqual(t, *w.Deploy.Replicas, 2)
	assert.Contains(t, w.DependsOn, "temporal")
	assert.Contains(t, w.DependsOn, "azurite")
	assert.Equal(t, "service_completed_successfully", w.DependsOn[initName],
		"worker must start after the search attributes exist")

	// Every service a service depends on exists (profiles aside).
	for name, svc := range cf.Services {
		for dep := range svc.DependsOn {
			_, ok := cf.Services[dep]
			assert.True(t, ok, "service %q depends on unknown service %q", name, dep)
		}
	}
}

func TestComposeSearchAttributesRegistered(t *testing.T) {
	_, cf := composeLoad(t)
	initName, err := composeInitService(cf)
	require.NoError(t, err)
	svc := cf.Services[initName]
	script := svc.Entrypoint.Text + "\n" + svc.Command.Text
	created := composeCreatedSearchAttributes(script)
	want := workflows.SearchAttributeTypes()
	for _, name := range composeSearchAttributeNames {
		assert.Contains(t, want, name, "workflows.SearchAttributeTypes lacks %s", name)
	}
	for name, typ := range want {
		got, ok := created[name]
		if assert.True(t, ok, "search attribute %s is not created by %s", name, initName) {
			assert.True(t, strings.EqualFold(composeCLITypes[typ], got),
				"search attribute %s: created as %q, the workflows upsert %s", name, got, composeCLITypes[typ])
		}
	}
	perType := map[string]int{}
	for _, typ := range created {
		perType[typ]++
	}
	for typ, n := range perType {
		limit, known := composeSQLVisibilityColumns[typ]
		if assert.True(t, known, "unknown search attribute type %q", typ) {
			assert.LessOrEqual(t, n, limit, "PostgreSQL visibility has only %d custom %s columns", limit, typ)
		}
	}
	// Each create addresses the Temporal service of this file.
	for _, line := range strings.Split(script, "\n") {
		if strings.Contains(line, "search-attribute create") {
			assert.Contains(t, line, "--address temporal:7233", "line %q", strings.TrimSpace(line))
			assert.Contains(t, line, "--namespace default", "line %q", strings.TrimSpace(line))
		}
	}
}

func TestComposeWorkerEnvironment(t *testing.T) {
	_, cf := composeLoad(t)
	env := cf.Services["worker"].Environment
	for _, k := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "MAILSHIFT_CONFIG", "MAILSHIFT_TASK_QUEUE", "AZURE_STORAGE_CONNECTION_STRING"} {
		assert.NotEmpty(t, env[k], "worker environment lacks %s", k)
	}

	host, port, err := net.SplitHostPort(env["TEMPORAL_ADDRESS"])
	require.NoError(t, err, "TEMPORAL_ADDRESS %q", env["TEMPORAL_ADDRESS"])
	assert.Equal(t, "temporal", host, "TEMPORAL_ADDRESS must name the temporal service")
	_, ok := cf.Services[host]
	assert.True(t, ok, "TEMPORAL_ADDRESS host %q is not a service", host)
	assert.Equal(t, "7233", port)

	conn := env["AZURE_STORAGE_CONNECTION_STRING"]
	assert.Contains(t, conn, "AccountName=devstoreaccount1")
	assert.Contains(t, conn, "AccountKey="+composeAzuriteDevKey, "only Azurite's published dev key may appear inline")
	assert.Contains(t, conn, "BlobEndpoint=http://azurite:10000/devstoreaccount1")

	// No credential inline, except the Azurite dev connection string.
	secretName := regexp.MustCompile(`(?i)pass|pwd|secret|token|credential|key`)
	secretValue := regexp.MustCompile(`(?i)(password|passwd|pwd|secret|token|accountkey|sharedaccesssignature)\s*[=:]`)
	for k, v := range env {
		if k == "AZURE_STORAGE_CONNECTION_STRING" {
			continue
		}
		if secretName.MatchString(k) {
			ref := strings.HasPrefix(v, "env:") || strings.HasPrefix(v, "file:") || v == ""
			assert.True(t, ref, "worker environment %s holds an inline secret; use a reference (env:/file:)", k)
		}
		assert.False(t, secretValue.MatchString(v), "worker environment %s looks like it holds a credential", k)
	}
}

func TestComposeWorkerBuild(t *testing.T) {
	root, cf := composeLoad(t)
	b := cf.Services["worker"].Build
	require.True(t, b.set, "worker must be built from the repository")
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	path := filepath.Join(root, b.Context, dockerfile)
	_, err := os.Stat(path)
	require.NoError(t, err, "worker Dockerfile %s", path)
	assert.Equal(t, root, filepath.Clean(filepath.Join(root, b.Context)), "build context must be the repository root (go.mod)")

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	// Join continuation lines, then inspect instructions.
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	var buildsWorker bool
	var entrypoint, user string
	binary := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "RUN":
			if strings.Contains(rest, "go build") && composeGoBuildWorker.MatchString(rest) {
				buildsWorker = true
				if m := composeGoBuildOutput.FindStringSubmatch(rest); m != nil {
					binary = filepath.Base(m[1])
				}
				assert.Contains(t, rest, "CGO_ENABLED=0", "the runtime image has no libc for cgo")
			}
		case "ENTRYPOINT":
			entrypoint = rest
		case "USER":
			user = rest
		}
	}
	assert.True(t, buildsWorker, "Dockerfile must `go build ./worker`")
	require.NotEmpty(t, binary, "go build needs -o")
	assert.Contains(t, entrypoint, binary, "ENTRYPOINT must run the built worker")
	require.NotEmpty(t, user, "the runtime image must set a USER")
	u, _, _ := strings.Cut(strings.TrimSpace(user), ":")
	assert.NotContains(t, []string{"root", "0"}, u, "the worker must not run as root")
}

func TestComposeWorkerConfig(t *testing.T) {
	root, cf := composeLoad(t)
	w := cf.Services["worker"]
	cfgPath := w.Environment["MAILSHIFT_CONFIG"]
	require.NotEmpty(t, cfgPath)

	// Find the host file mounted at (or above) MAILSHIFT_CONFIG.
	hostFile := ""
	for _, v := range w.Volumes {
		if v.Source == "" || !(strings.HasPrefix(v.Source, ".") || strings.HasPrefix(v.Source, "/")) {
			continue // named volume
		}
		if v.Target == cfgPath {
			hostFile = filepath.Join(root, v.Source)
		} else if rel, err := filepath.Rel(v.Target, cfgPath); err == nil && !strings.HasPrefix(rel, "..") {
			hostFile = filepath.Join(root, v.Source, rel)
		}
		if hostFile != "" {
			assert.True(t, v.ReadOnly, "the config mount should be read-only")
			break
		}
	}
	require.NotEmpty(t, hostFile, "no volume of the worker mounts MAILSHIFT_CONFIG %s", cfgPath)
	data, err := os.ReadFile(hostFile)
	require.NoError(t, err, "the mounted config must exist in the repository")

	var cfg struct {
		TaskQueue string `yaml:"task_queue"`
		Endpoints map[string]struct {
			URL            string `yaml:"url"`
			Auth           string `yaml:"auth"`
			Passwords      string `yaml:"passwords"`
			MasterPassword string `yaml:"master_password"`
		} `yaml:"endpoints"`
		Staging struct {
			Kind             string `yaml:"kind"`
			ConnectionString string `yaml:"connection_string"`
		} `yaml:"staging"`
		PayloadEncryption struct {
			Keys []struct {
				Key string `yaml:"key"`
			} `yaml:"keys"`
		} `yaml:"payload_encryption"`
	}
	require.NoError(t, yaml.Unmarshal(data, &cfg), "%s does not parse", hostFile)
	assert.Equal(t, w.Environment["MAILSHIFT_TASK_QUEUE"], cfg.TaskQueue, "task queue in the config and in the environment differ")
	for _, name := range []string{"source", "target"} {
		ep, ok := cfg.Endpoints[name]
		if !assert.True(t, ok, "endpoints.%s missing", name) {
			continue
		}
		assert.Regexp(t, `^imaps?://[^/]+`, ep.URL, "endpoints.%s.url", name)
	}
	assert.NotEmpty(t, cfg.Staging.Kind, "staging.kind")

	// Every secret is a reference, and file references point into a mount.
	refs := []string{cfg.Staging.ConnectionString}
	for _, ep := range cfg.Endpoints {
		refs = append(refs, ep.Passwords, ep.MasterPassword)
	}
	for _, k := range cfg.PayloadEncryption.Keys {
		refs = append(refs, k.Key)
	}
	for _, ref := range refs {
		if ref == "" {
			continue
		}
		path, isFile := strings.CutPrefix(ref, "file:")
		assert.True(t, isFile || strings.HasPrefix(ref, "env:"), "secret %q must be an env: or file: reference", ref)
		if !isFile {
			continue
		}
		mounted := false
		for _, v := range w.Volumes {
			if rel, err := filepath.Rel(v.Target, path); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
				mounted = true
			}
		}
		assert.True(t, mounted, "secret file %s is not inside a volume mounted into the worker", path)
	}
	_, err = os.Stat(filepath.Join(root, "deploy", "secrets", "README.md"))
	assert.NoError(t, err, "deploy/secrets/README.md explains the secret files")
}

func TestComposeHelpers(t *testing.T) {
	got := composeCreatedSearchAttributes("set -e\n" +
		"temporal operator search-attribute create --address a:1 --namespace default --name A --type Keyword\n" +
		"temporal operator search-attribute create --name=B --type=Int && echo ok\n" +
		"temporal operator search-attribute create \\\n  --name C \\\n  --type \"Int\"\n" +
		"temporal operator search-attribute list\n")
	assert.Equal(t, map[string]string{"A": "Keyword", "B": "Int", "C": "Int"}, got)

	var svc composeService
	require.NoError(t, yaml.Unmarshal([]byte(`
environment: ["A=1", "B=x=y"]
ports: ["127.0.0.1:7233:7233/tcp", {target: 80, published: "8080"}]
depends_on: [db]
volumes: ["./a:/b:ro", "named:/data"]
`), &svc))
	assert.Equal(t, composeEnvironment{"A": "1", "B": "x=y"}, svc.Environment)
	assert.True(t, composePublishes(svc, "7233", "7233"))
	assert.True(t, composePublishes(svc, "8080", "80"))
	assert.Equal(t, composeDependsOn{"db": ""}, svc.DependsOn)
	assert.Equal(t, []composeVolume{{Source: "./a", Target: "/b", ReadOnly: true}, {Source: "named", Target: "/data"}}, svc.Volumes)

	_, err := composeInitService(composeFile{Services: map[string]composeService{"x": {}}})
	assert.Error(t, err)
}

// composeMount returns the host path (relative to root) of svc's volume
// mounted at target, or "".
func composeMount(svc composeService, target string) string {
	for _, v := range svc.Volumes {
		if v.Target == target && (strings.HasPrefix(v.Source, ".") || strings.HasPrefix(v.Source, "/")) {
			return v.Source
		}
	}
	return ""
}

// The prometheus service scrapes every worker replica at the port its
// MAILSHIFT_METRICS_ADDR listens on; grafana gets the Prometheus
// datasource and the dashboard from provisioning files in deploy/.
func TestComposeMetricsStack(t *testing.T) {
	root, cf := composeLoad(t)
	w := cf.Services["worker"]
	host, port, err := net.SplitHostPort(w.Environment["MAILSHIFT_METRICS_ADDR"])
	require.NoError(t, err, "worker needs MAILSHIFT_METRICS_ADDR")
	assert.Contains(t, []string{"", "0.0.0.0", "::"}, host, "the worker must listen beyond loopback for the prometheus service")

	prom, ok := cf.Services["prometheus"]
	require.True(t, ok, "service prometheus missing")
	assert.True(t, composePublishes(prom, "9090", "9090"), "prometheus must publish 9090")
	assert.Contains(t, prom.DependsOn, "worker")
	promCfg := composeMount(prom, "/etc/prometheus/prometheus.yml")
	require.NotEmpty(t, promCfg, "prometheus must mount its configuration from the repository")
	assert.Contains(t, prom.Command.Text, "--config.file=/etc/prometheus/prometheus.yml")
	var pc struct {
		ScrapeConfigs []struct {
			JobName     string `yaml:"job_name"`
			MetricsPath string `yaml:"metrics_path"`
			DNSSD       []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join(root, promCfg), &pc)
	scrapesWorkers := false
	for _, sc := range pc.ScrapeConfigs {
		for _, d := range sc.DNSSD {
			// Docker's DNS gives one A record per replica of a service.
			if slices.Contains(d.Names, "worker") && d.Type == "A" && fmt.Sprint(d.Port) == port &&
				(sc.MetricsPath == "" || sc.MetricsPath == "/metrics") {
				scrapesWorkers = true
			}
		}
	}
	assert.True(t, scrapesWorkers, "%s must scrape every worker replica (dns_sd_configs names [worker], type A, port %s)", promCfg, port)

	g, ok := cf.Services["grafana"]
	require.True(t, ok, "service grafana missing")
	assert.True(t, composePublishes(g, "3000", "3000"), "grafana must publish 3000")
	assert.Contains(t, g.DependsOn, "prometheus")
	prov := composeMount(g, "/etc/grafana/provisioning")
	require.NotEmpty(t, prov, "grafana must mount its provisioning directory from the repository")

	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(root, prov, "datasources", "prometheus.yaml"), &ds)
	require.Len(t, ds.Datasources, 1)
	assert.Equal(t, "prometheus", ds.Datasources[0].Type)
	assert.Equal(t, "http://prometheus:9090", ds.Datasources[0].URL, "the datasource must be the prometheus service")

	var dp struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(root, prov, "dashboards", "mailshift.yaml"), &dp)
	require.Len(t, dp.Providers, 1)
	assert.Equal(t, "file", dp.Providers[0].Type)
	dashDir := composeMount(g, dp.Providers[0].Options.Path)
	require.NotEmpty(t, dashDir, "grafana must mount the dashboards at the provider's path %s", dp.Providers[0].Options.Path)
	dash := composeDashboard(t, filepath.Join(root, dashDir, "mailshift.json"))
	for _, uid := range dash.datasourceUIDs {
		assert.Equal(t, ds.Datasources[0].UID, uid, "the dashboard must use the provisioned datasource")
	}
}

// readYAML parses a file of the repository into v.
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, v), "%s does not parse", path)
}

// TestComposeCodecServer: the stack encrypts payloads, and its Web UI
// decrypts them through a codec server that has the worker's keys, is
// published on the host's loopback only, and lets only the UI's origin in.
func TestComposeCodecServer(t *testing.T) {
	root, cf := composeLoad(t)
	cs, ok := cf.Services["codec-server"]
	require.True(t, ok, "service codec-server missing")
	args := cs.Command.Args
	require.NotEmpty(t, args, "codec-server needs a command (list form)")
	require.Equal(t, "codec-server", args[0])
	flag := func(name string) string {
		for i, a := range args {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
		}
		return ""
	}

	// It is the starter, built from the repository.
	require.True(t, cs.Build.set, "codec-server must be built from the repository")
	df, err := os.ReadFile(filepath.Join(root, cs.Build.Context, cs.Build.Dockerfile))
	require.NoError(t, err)
	require.Regexp(t, `go build [^\n]*\./starter`, string(df))
	require.Regexp(t, `(?m)^USER 65532`, string(df), "not as root")

	// The worker's configuration and secrets, mounted where the worker has them.
	w := cf.Services["worker"]
	cfgPath := flag("--config")
	require.Equal(t, w.Environment["MAILSHIFT_CONFIG"], cfgPath)
	require.NotEmpty(t, composeMount(cs, cfgPath), "the codec server mounts %s", cfgPath)
	require.Equal(t, composeMount(w, cfgPath), composeMount(cs, cfgPath), "the codec server reads the worker's configuration")
	require.NotEmpty(t, composeMount(cs, "/run/secrets/mailshift"), "the codec server mounts the secrets")
	require.Equal(t, composeMount(w, "/run/secrets/mailshift"), composeMount(cs, "/run/secrets/mailshift"), "and its secrets")
	cfg, err := config.Load(filepath.Join(root, "deploy", "mailshift.yaml"))
	require.NoError(t, err)
	require.NotNil(t, cfg.PayloadEncryption, "deploy/mailshift.yaml encrypts payloads")

	// Published on loopback only: it decrypts for whoever reaches it.
	_, port, err := net.SplitHostPort(flag("--listen"))
	require.NoError(t, err)
	require.Len(t, cs.Ports, 1)
	require.Equal(t, "127.0.0.1", cs.Ports[0].Host, "the codec server must be published on the host's loopback only")
	require.Equal(t, port, cs.Ports[0].Target)

	// The UI calls it from the browser, at its published address, and it
	// lets the UI's origin in.
	ui := cf.Services["temporal-ui"]
	require.Equal(t, "http://localhost:"+cs.Ports[0].Published, ui.Environment["TEMPORAL_CODEC_ENDPOINT"])
	require.NotEmpty(t, ui.Environment["TEMPORAL_CORS_ORIGINS"])
	require.Contains(t, strings.Split(flag("--cors-origin"), ","), ui.Environment["TEMPORAL_CORS_ORIGINS"])
	require.Contains(t, ui.DependsOn, "codec-server")

	// The secrets README tells how to make the key.
	readme, err := os.ReadFile(filepath.Join(root, "deploy", "secrets", "README.md"))
	require.NoError(t, err)
	require.NotEmpty(t, cfg.PayloadEncryption.Keys)
	for _, k := range cfg.PayloadEncryption.Keys {
		require.Contains(t, string(readme), filepath.Base(strings.TrimPrefix(string(k.Key), "file:")))
	}
}
