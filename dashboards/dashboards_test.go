package dashboards

// These tests keep the operations files honest without Grafana, Prometheus
// or Docker: every Grafana dashboard and every alert rule is parsed, every
// metric name they use must be one iacc (or a collector it registers)
// exports, every alert has a runbook and unit tests that make it fire and
// stay silent, and the deployment files under deploy/ parse and keep the
// seed's topology. promtool, nginx -t and kustomize run in deploy/validate.sh.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.yaml.in/yaml/v3"

	"github.com/iacc/iacc/metrics"
	"github.com/iacc/iacc/precedence"
	"github.com/iacc/iacc/worker/backup"
)

// Metrics exported by collectors that cannot be described here (package
// main, asynq's collector needs Redis to describe itself) or by other
// programs. Keep in step with their sources.
var literalMetrics = map[string][]string{
	// cmd/iacc/observe.go
	"cmd/iacc/observe.go": {"iacc_build_info", "iacc_scrape_error", "iacc_outbox_pending", "iacc_redis_pool", "iacc_redis_memory_bytes"},
	// exported by cmd/iacc (webhook endpoint states), landing with the webhooks feature
	"cmd/iacc (webhooks)": {"iacc_webhook_endpoints"},
	// worker/accounting/metrics.go BacklogGauge, registered by cmd/iacc/observe.go
	"worker/accounting/metrics.go": {"iacc_accounting_backlog"},
	// github.com/hibiken/asynq/x/metrics QueueMetricsCollector
	"asynq x/metrics": {
		"asynq_tasks_enqueued_total", "asynq_queue_size", "asynq_queue_latency_seconds",
		"asynq_queue_memory_usage_approx_bytes", "asynq_tasks_processed_total",
		"asynq_tasks_failed_total", "asynq_queue_paused_total",
	},
	// Prometheus itself
	"prometheus": {"up", "scrape_duration_seconds", "ALERTS", "ALERTS_FOR_STATE"},
	// node_exporter (deploy/compose runs one; Kubernetes clusters run their own)
	"node_exporter": {"node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_filesystem_readonly"},
}

// captureRegisterer records what metrics.New registers.
type captureRegisterer struct{ cs []prometheus.Collector }

func (r *captureRegisterer) Register(c prometheus.Collector) error {
	r.cs = append(r.cs, c)
	return nil
}
func (r *captureRegisterer) MustRegister(cs ...prometheus.Collector) { r.cs = append(r.cs, cs...) }
func (r *captureRegisterer) Unregister(prometheus.Collector) bool    { return false }

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// describe adds the names a collector describes, with the series suffixes
// of histograms and summaries.
func describe(known map[string]string, source string, c prometheus.Collector) {
	suffixes := []string{""}
	// iacc's set holds vectors only (a plain Histogram and Summary cannot be
	// told apart by interface).
	switch c.(type) {
	case *prometheus.HistogramVec:
		suffixes = []string{"", "_bucket", "_sum", "_count"}
	case *prometheus.SummaryVec:
		suffixes = []string{"", "_sum", "_count"}
	}
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		m := fqNameRE.FindStringSubmatch(d.String())
		if m == nil {
			continue
		}
		for _, s := range suffixes {
			known[m[1]+s] = source
		}
	}
}

// knownMetrics maps every metric name iacc's processes export to where it
// comes from: iacc's metric set and the collectors cmd/iacc registers are
// described from the code itself, the rest comes from literalMetrics.
func knownMetrics(t *testing.T) map[string]string {
	t.Helper()
	known := map[string]string{}
	reg := &captureRegisterer{}
	metrics.New(reg)
	if len(reg.cs) == 0 {
		t.Fatal("metrics.New registered nothing")
	}
	for _, c := range reg.cs {
		describe(known, "metrics/metrics.go", c)
	}
	describe(known, "Go collector", collectors.NewGoCollector())
	describe(known, "process collector", collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	describe(known, "DB stats collector", collectors.NewDBStatsCollector(nil, "iacc"))
	describe(known, "worker/backup/status.go", backup.NewCollector(nil, 0))
	describe(known, "precedence/metrics.go", precedence.NewCollector(nil))
	for source, names := range literalMetrics {
		for _, n := range names {
			known[n] = source
		}
	}
	for _, n := range []string{"http_requests_total", "http_request_duration_seconds_bucket", "iacc_task_duration_seconds_bucket",
		"go_goroutines", "process_cpu_seconds_total", "go_sql_in_use_connections", "go_sched_gomaxprocs_threads",
		"iacc_backup_last_success_timestamp_seconds"} {
		if _, ok := known[n]; !ok {
			t.Fatalf("the known-metric list lacks %s: describing the collectors went wrong", n)
		}
	}
	return known
}

// ---------------------------------------------------------------- PromQL

// Words of PromQL that are not metric names. Functions and aggregations need
// no list: an identifier followed by "(" is never a metric.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true,
}

// Keywords followed by a parenthesised list of label names.
var labelListKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at %d", i)
}

// skipGroup returns the index after the bracket group (open…close) starting
// at i, stepping over strings inside it.
func skipGroup(s string, i int, open, closing byte) (int, error) {
	depth := 0
	for j := i; j < len(s); {
		switch c := s[j]; {
		case c == '"' || c == '\'' || c == '`':
			k, err := skipString(s, j)
			if err != nil {
				return 0, err
			}
			j = k
			continue
		case c == open:
			depth++
		case c == closing:
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		}
		j++
	}
	return 0, fmt.Errorf("unbalanced %c at %d", open, i)
}

// aggregationModifier reports whether s[i:] starts with the word by or
// without, as after the name of an aggregation.
func aggregationModifier(s string, i int) bool {
	j := i
	for j < len(s) && isIdent(s[j]) {
		j++
	}
	w := s[i:j]
	return w == "by" || w == "without"
}

func nextNonSpace(s string, i int) int {
	for i < len(s) && strings.ContainsRune(" \t\r\n", rune(s[i])) {
		i++
	}
	return i
}

// promqlMetricNames returns the metric names a PromQL expression reads. It
// is a rough lexer, not a parser: strings, label matchers {…}, ranges […],
// label lists after by/without/on/ignoring/group_*, numbers and durations,
// Grafana variables ($var, ${var}) and comments are skipped; an identifier
// followed by "(" is a function; what is left is a metric name.
func promqlMetricNames(expr string) ([]string, error) {
	var names []string
	s := expr
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(s, i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{':
			j, err := skipGroup(s, i, '{', '}')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '[':
			j, err := skipGroup(s, i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				j, err := skipGroup(s, i, '{', '}')
				if err != nil {
					return nil, err
				}
				i = j
			}
			for i < len(s) && isIdent(s[i]) {
				i++
			}
		case c >= '0' && c <= '9', c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			word := s[i:j]
			k := nextNonSpace(s, j)
			switch {
			case labelListKeywords[word] && k < len(s) && s[k] == '(':
				end, err := skipGroup(s, k, '(', ')')
				if err != nil {
					return nil, err
				}
				j = end
			case promqlKeywords[word]:
			case k < len(s) && s[k] == '(':
				// a function or an aggregation: sum(…)
			case aggregationModifier(s, k):
				// an aggregation with its modifier first: sum by (…) (…)
			default:
				names = append(names, word)
			}
			i = j
		default:
			i++
		}
	}
	return names, nil
}

func TestPromQLMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`rate(http_requests_total{status=~"5..", route!~"/health|/ready"}[5m])`, []string{"http_requests_total"}},
		{`histogram_quantile(0.95, sum by (route, le) (rate(http_request_duration_seconds_bucket[$__rate_interval])))`, []string{"http_request_duration_seconds_bucket"}},
		{`sum(rate(a_total[5m])) by (job) / on (job) group_left(version) b_info > bool 0.5`, []string{"a_total", "b_info"}},
		{`max(x offset 1h) or vector(0) unless on () count(y:recorded)`, []string{"x", "y:recorded"}},
		{`time() - max(iacc_backup_last_success_timestamp_seconds) > 26 * 3600 or absent(z)`, []string{"iacc_backup_last_success_timestamp_seconds", "z"}},
		{"label_replace(m{a=\"}\"}, \"dst\", \"$1\", \"src\", \"(.*)\") # by(comment)\n+ n", []string{"m", "n"}},
		{`q{route=~"$route", queue=~"${queue}"} * 1e3 + ignoring(le) r`, []string{"q", "r"}},
		{"max by (queue) (s) > 15 and sum without (le)\n(t)", []string{"s", "t"}},
	} {
		got, err := promqlMetricNames(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{`a{b="c"`, `rate(a[5m)`, `a{b="c}`} {
		if _, err := promqlMetricNames(bad); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}

// checkNames reports every unknown metric of expr.
func checkNames(t *testing.T, where, expr string, known map[string]string) {
	t.Helper()
	names, err := promqlMetricNames(expr)
	if err != nil {
		t.Errorf("%s: cannot read the query %q: %v", where, expr, err)
		return
	}
	if len(names) == 0 && !strings.Contains(expr, "vector(") && !strings.Contains(expr, "time()") {
		t.Errorf("%s: no metric in %q", where, expr)
	}
	for _, n := range names {
		if _, ok := known[n]; !ok {
			t.Errorf("%s: unknown metric %q in %q (not in metrics/metrics.go, the collectors cmd/iacc registers, worker/backup or literalMetrics)", where, n, expr)
		}
	}
}

// ---------------------------------------------------------------- Grafana

type grafanaDS struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaPanel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource *grafanaDS      `json:"datasource"`
	GridPos    *map[string]int `json:"gridPos"`
	Targets    []struct {
		RefID      string     `json:"refId"`
		Expr       string     `json:"expr"`
		Datasource *grafanaDS `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string     `json:"name"`
			Type       string     `json:"type"`
			Query      any        `json:"query"`
			Definition string     `json:"definition"`
			Datasource *grafanaDS `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

// Datasource references a dashboard may use: the "datasource" variable
// (works on import and with provisioning) or the provisioned uid.
var allowedDatasources = []string{"${datasource}", "prometheus"}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)

func TestGrafanaDashboards(t *testing.T) {
	known := knownMetrics(t)
	files, err := filepath.Glob("grafana/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"api.json", "queues.json", "business.json", "backups.json"} {
		if !slices.Contains(files, filepath.Join("grafana", want)) {
			t.Errorf("grafana/%s is missing", want)
		}
	}
	uids := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(&d); err != nil {
			t.Errorf("%s: not valid JSON: %v", f, err)
			continue
		}
		if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
			t.Errorf("%s: needs uid, title and schemaVersion >= 36 (got %q, %q, %d)", f, d.UID, d.Title, d.SchemaVersion)
		}
		if other, ok := uids[d.UID]; ok {
			t.Errorf("%s: uid %q already used by %s", f, d.UID, other)
		}
		uids[d.UID] = f
		hasDSVar := false
		for _, v := range d.Templating.List {
			switch v.Type {
			case "datasource":
				hasDSVar = v.Name == "datasource"
			case "query":
				q := v.Definition
				if m, ok := v.Query.(map[string]any); ok && q == "" {
					q, _ = m["query"].(string)
				} else if s, ok := v.Query.(string); ok && q == "" {
					q = s
				}
				if m := labelValuesRE.FindStringSubmatch(q); m != nil {
					checkNames(t, fmt.Sprintf("%s variable %s", f, v.Name), m[1], known)
				}
			}
		}
		ids := map[int]bool{}
		exprs := 0
		var walk func(ps []grafanaPanel)
		walk = func(ps []grafanaPanel) {
			for _, p := range ps {
				where := fmt.Sprintf("%s panel %d %q", f, p.ID, p.Title)
				if p.ID == 0 || ids[p.ID] {
					t.Errorf("%s: panel ids must be unique and non-zero", where)
				}
				ids[p.ID] = true
				if p.GridPos == nil {
					t.Errorf("%s: no gridPos", where)
				}
				if p.Type == "row" {
					walk(p.Panels)
					continue
				}
				if p.Datasource == nil || !slices.Contains(allowedDatasources, p.Datasource.UID) {
					t.Errorf("%s: datasource must be one of %q, got %+v", where, allowedDatasources, p.Datasource)
				} else if p.Datasource.UID == "${datasource}" && !hasDSVar {
					t.Errorf("%s: uses ${datasource} but the dashboard has no datasource variable", where)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: no query", where)
				}
				refs := map[string]bool{}
				for _, tg := range p.Targets {
					if tg.RefID == "" || refs[tg.RefID] {
						t.Errorf("%s: refIds must be set and unique", where)
					}
					refs[tg.RefID] = true
					if tg.Datasource != nil && !slices.Contains(allowedDatasources, tg.Datasource.UID) {
						t.Errorf("%s: target datasource %q", where, tg.Datasource.UID)
					}
					if strings.TrimSpace(tg.Expr) == "" {
						t.Errorf("%s: empty expr", where)
						continue
					}
					exprs++
					checkNames(t, where, tg.Expr, known)
				}
			}
		}
		walk(d.Panels)
		if exprs == 0 {
			t.Errorf("%s: no query at all", f)
		}
	}
}

// ---------------------------------------------------------------- rules

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Limit    int    `yaml:"limit"`
		Rules    []struct {
			Alert         string            `yaml:"alert"`
			Record        string            `yaml:"record"`
			Expr          string            `yaml:"expr"`
			For           string            `yaml:"for"`
			KeepFiringFor string            `yaml:"keep_firing_for"`
			Labels        map[string]string `yaml:"labels"`
			Annotations   map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name        string `yaml:"name"`
		InputSeries []struct {
			Series string `yaml:"series"`
		} `yaml:"input_series"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTest []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

const runbookBase = "https://github.com/iacc/iacc/blob/main/docs/runbooks/"

// decodeYAML decodes one YAML file; strict refuses unknown fields (a
// misspelt "anotations" would otherwise pass silently).
func decodeYAML(path string, v any, strict bool) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(strict)
	return dec.Decode(v)
}

// alertRules reads every rule file and returns alert name → expr.
func alertRules(t *testing.T, known map[string]string) map[string]string {
	t.Helper()
	files, err := filepath.Glob("prometheus/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	alerts := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.yml") {
			continue
		}
		var rf ruleFile
		if err := decodeYAML(f, &rf, true); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// Recording rules define names of their own.
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					known[r.Record] = f
				}
			}
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				name := r.Alert + r.Record
				where := fmt.Sprintf("%s group %s rule %s", f, g.Name, name)
				checkNames(t, where, r.Expr, known)
				if r.Alert == "" {
					continue
				}
				if _, dup := alerts[r.Alert]; dup {
					t.Errorf("%s: alert name used twice", where)
				}
				alerts[r.Alert] = r.Expr
				if s := r.Labels["severity"]; s != "critical" && s != "warning" {
					t.Errorf("%s: severity label must be critical or warning, got %q", where, s)
				}
				for _, a := range []string{"summary", "description", "runbook_url"} {
					if strings.TrimSpace(r.Annotations[a]) == "" {
						t.Errorf("%s: annotation %s is missing", where, a)
					}
				}
				u := r.Annotations["runbook_url"]
				page, _, _ := strings.Cut(strings.TrimPrefix(u, runbookBase), "#")
				if !strings.HasPrefix(u, runbookBase) || !strings.HasSuffix(page, ".md") {
					t.Errorf("%s: runbook_url %q must be %s<page>.md", where, u, runbookBase)
				} else if _, err := os.Stat(filepath.Join("..", "docs", "runbooks", page)); err != nil {
					t.Errorf("%s: runbook %s does not exist: %v", where, page, err)
				}
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alert rules found in prometheus/*.yml")
	}
	return alerts
}

func TestAlertRules(t *testing.T) {
	known := knownMetrics(t)
	alerts := alertRules(t, known)
	// The seed's thresholds are covered.
	for _, name := range []string{"IaccApiLatencyHigh", "IaccApiErrorRateHigh", "IaccQueueLatencyHigh", "IaccCriticalQueueLatencyHigh",
		"IaccOutboxBacklogOld", "IaccArchivedTasksGrowing", "IaccWebhookEndpointDisabled", "IaccBackupStale",
		"IaccBackupVerificationFailed", "IaccRedisDown", "IaccMySQLDown", "IaccMySQLPoolExhausted", "IaccHighCPU", "IaccDiskSpaceCritical"} {
		if _, ok := alerts[name]; !ok {
			t.Errorf("alert %s is missing", name)
		}
	}
}

// TestEveryAlertHasUnitTests: each alert is tested firing and silent.
func TestEveryAlertHasUnitTests(t *testing.T) {
	known := knownMetrics(t)
	alerts := alertRules(t, known)
	var tf ruleTestFile
	if err := decodeYAML("prometheus/alerts_test.yml", &tf, false); err != nil {
		t.Fatal(err)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	seriesRE := regexp.MustCompile(`^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	for _, tc := range tf.Tests {
		for _, s := range tc.InputSeries {
			m := seriesRE.FindStringSubmatch(s.Series)
			if m == nil {
				t.Errorf("test %q: series %q has no metric name", tc.Name, s.Series)
				continue
			}
			if _, ok := known[m[1]]; !ok {
				t.Errorf("test %q: input series of unknown metric %q", tc.Name, m[1])
			}
		}
		for _, e := range tc.PromQLExprTest {
			checkNames(t, "test "+tc.Name, e.Expr, known)
		}
		for _, a := range tc.AlertRuleTest {
			if _, ok := alerts[a.Alertname]; !ok {
				t.Errorf("test %q: no alert named %q", tc.Name, a.Alertname)
			}
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	names := make([]string, 0, len(alerts))
	for n := range alerts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !fires[n] {
			t.Errorf("alert %s: no unit test in prometheus/alerts_test.yml where it fires", n)
		}
		if !silent[n] {
			t.Errorf("alert %s: no unit test in prometheus/alerts_test.yml where it stays silent (exp_alerts: [])", n)
		}
	}
}

// ---------------------------------------------------------------- deploy/

// TestOpsFilesParse parses every YAML and JSON file under deploy/ and
// dashboards/ (deploy/local/ holds no such file).
func TestOpsFilesParse(t *testing.T) {
	n := 0
	for _, root := range []string{".", filepath.Join("..", "deploy")} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			switch ext := filepath.Ext(path); ext {
			case ".json":
				n++
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					t.Errorf("%s: %v", path, err)
				}
			case ".yml", ".yaml":
				n++
				dec := yaml.NewDecoder(bytes.NewReader(raw))
				for doc := 0; ; doc++ {
					var v any
					if err := dec.Decode(&v); errors.Is(err, io.EOF) {
						break
					} else if err != nil {
						t.Errorf("%s (document %d): %v", path, doc+1, err)
						break
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n < 10 {
		t.Errorf("only %d YAML/JSON files found under dashboards/ and deploy/", n)
	}
}

type composeFile struct {
	Services map[string]struct {
		Image       string         `yaml:"image"`
		Build       any            `yaml:"build"`
		Command     any            `yaml:"command"`
		Ports       []any          `yaml:"ports"`
		Networks    any            `yaml:"networks"`
		Healthcheck map[string]any `yaml:"healthcheck"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
	} `yaml:"services"`
	Networks map[string]struct {
		Internal bool `yaml:"internal"`
	} `yaml:"networks"`
}

func (c composeFile) networksOf(svc string) []string {
	switch v := c.Services[svc].Networks.(type) {
	case []any:
		var out []string
		for _, n := range v {
			out = append(out, fmt.Sprint(n))
		}
		return out
	case map[string]any:
		var out []string
		for n := range v {
			out = append(out, n)
		}
		sort.Strings(out)
		return out
	}
	return nil
}

// TestComposeTopology checks deploy/compose/compose.yaml keeps the seed's
// single-server topology and start-up order.
func TestComposeTopology(t *testing.T) {
	var c composeFile
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"nginx", "api", "worker", "scheduler", "migrate", "mysql", "redis", "prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("service %s is missing", s)
		}
	}
	for _, s := range []string{"nginx", "mysql", "redis", "prometheus", "grafana"} {
		if len(c.Services[s].Healthcheck) == 0 {
			t.Errorf("service %s has no healthcheck", s)
		}
	}
	for _, s := range []string{"api", "worker", "scheduler"} {
		deps := c.Services[s].DependsOn
		for dep, cond := range map[string]string{"mysql": "service_healthy", "redis": "service_healthy", "migrate": "service_completed_successfully"} {
			if deps[dep].Condition != cond {
				t.Errorf("service %s must depend on %s with condition %s, got %q", s, dep, cond, deps[dep].Condition)
			}
		}
	}
	if c.Services["migrate"].DependsOn["mysql"].Condition != "service_healthy" {
		t.Error("migrate must wait for a healthy mysql")
	}
	// Only nginx (and the ops UIs on loopback) publish ports; MySQL and Redis
	// live on an internal network only.
	for name, s := range c.Services {
		for _, p := range s.Ports {
			ps := fmt.Sprint(p)
			if name != "nginx" && !strings.HasPrefix(ps, "127.0.0.1:") {
				t.Errorf("service %s publishes %s beyond loopback", name, ps)
			}
		}
	}
	for _, s := range []string{"mysql", "redis"} {
		for _, n := range c.networksOf(s) {
			if !c.Networks[n].Internal {
				t.Errorf("service %s is on network %s, which is not internal", s, n)
			}
		}
		if len(c.networksOf(s)) == 0 {
			t.Errorf("service %s must be on the internal network only", s)
		}
	}
	redisCmd := fmt.Sprint(c.Services["redis"].Command)
	for _, want := range []string{"--appendonly yes", "--maxmemory-policy noeviction"} {
		if !strings.Contains(redisCmd, strings.Split(want, " ")[0]) || !strings.Contains(redisCmd, strings.Split(want, " ")[1]) {
			t.Errorf("redis command %s lacks %s", redisCmd, want)
		}
	}
}

type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec map[string]any `yaml:"spec"`
}

// dig walks maps and the first element of lists.
func dig(v any, path ...string) any {
	for _, p := range path {
		switch m := v.(type) {
		case map[string]any:
			v = m[p]
		case []any:
			if len(m) == 0 {
				return nil
			}
			v = dig(m[0], p)
		default:
			return nil
		}
	}
	return v
}

// TestKubernetesBase checks the base manifests: probes on the right paths,
// resources, disruption budgets and the network policies of the seed's
// security boundaries. (kustomize build runs in deploy/validate.sh.)
func TestKubernetesBase(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "deploy", "k8s", "base", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string][]k8sObject{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if filepath.Base(f) == "kustomization.yaml" || o.Kind == "" {
				continue
			}
			if o.APIVersion == "" || o.Metadata.Name == "" {
				t.Errorf("%s: %s without apiVersion or name", f, o.Kind)
			}
			kinds[o.Kind] = append(kinds[o.Kind], o)
		}
	}
	deployments := map[string]k8sObject{}
	for _, d := range kinds["Deployment"] {
		deployments[d.Metadata.Name] = d
	}
	for _, name := range []string{"iacc-api", "iacc-worker", "iacc-scheduler"} {
		d, ok := deployments[name]
		if !ok {
			t.Errorf("Deployment %s is missing", name)
			continue
		}
		containers := dig(d.Spec, "template", "spec", "containers")
		if p := dig(containers, "livenessProbe", "httpGet", "path"); p != "/health" {
			t.Errorf("%s: liveness probe must be GET /health (never /ready: a MySQL outage would restart every pod), got %v", name, p)
		}
		if p := dig(containers, "readinessProbe", "httpGet", "path"); p != "/ready" {
			t.Errorf("%s: readiness probe must be GET /ready, got %v", name, p)
		}
		for _, r := range []string{"requests", "limits"} {
			if dig(containers, "resources", r) == nil {
				t.Errorf("%s: resources.%s missing", name, r)
			}
		}
	}
	if r, _ := dig(deployments["iacc-scheduler"].Spec, "replicas").(int); r < 2 {
		t.Errorf("iacc-scheduler: want 2 replicas (ticks are claimed in MySQL), got %d", r)
	}
	pdbs := map[string]bool{}
	for _, p := range kinds["PodDisruptionBudget"] {
		pdbs[p.Metadata.Name] = true
	}
	for _, name := range []string{"iacc-api", "iacc-worker", "iacc-scheduler"} {
		if !pdbs[name] {
			t.Errorf("PodDisruptionBudget %s is missing", name)
		}
	}
	if len(kinds["HorizontalPodAutoscaler"]) == 0 || len(kinds["ScaledObject"]) == 0 || len(kinds["Job"]) == 0 || len(kinds["Ingress"]) == 0 {
		t.Errorf("want an HPA (api), a KEDA ScaledObject (worker), the migrate Job and an Ingress; have %d, %d, %d, %d",
			len(kinds["HorizontalPodAutoscaler"]), len(kinds["ScaledObject"]), len(kinds["Job"]), len(kinds["Ingress"]))
	}
	policies := map[string]bool{}
	for _, p := range kinds["NetworkPolicy"] {
		policies[p.Metadata.Name] = true
	}
	for _, name := range []string{"default-deny-ingress", "mysql-from-iacc-only", "redis-from-iacc-only"} {
		if !policies[name] {
			t.Errorf("NetworkPolicy %s is missing", name)
		}
	}
}
