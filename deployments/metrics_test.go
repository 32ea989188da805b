package deployments

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

type metricKind int

const (
	counter metricKind = iota
	gauge
	histogram
)

type metricSpec struct {
	kind   metricKind
	labels []string
}

// serviceMetrics is every metric the service exports: the one list the
// rules and the dashboards are checked against.
var serviceMetrics = map[string]metricSpec{
	"chatgpt_api_http_requests_total":           {counter, []string{"route", "method", "code"}},
	"chatgpt_api_http_request_duration_seconds": {histogram, []string{"route", "method"}},
	"chatgpt_api_time_to_first_token_seconds":   {histogram, []string{"backend", "model"}},
	"chatgpt_api_tokens_total":                  {counter, []string{"backend", "model", "type"}},
	"chatgpt_api_upstream_attempts_total":       {counter, []string{"backend", "outcome"}},
	"chatgpt_api_upstream_duration_seconds":     {histogram, []string{"backend", "outcome"}},
	"chatgpt_api_fallbacks_total":               {counter, []string{"from", "to", "reason"}},
	"chatgpt_api_backend_up":                    {gauge, []string{"backend"}},
	"chatgpt_api_backend_latency_seconds":       {gauge, []string{"backend"}},
	"chatgpt_api_circuit_breaker_state":         {gauge, []string{"backend"}},
	"chatgpt_api_queue_depth":                   {gauge, []string{"backend"}},
	"chatgpt_api_backend_models":                {gauge, []string{"backend"}},
	"chatgpt_api_upstream_in_flight":            {gauge, []string{"backend"}},
	"chatgpt_api_host_attempts_total":           {counter, []string{"backend", "host", "outcome"}},
	"chatgpt_api_host_up":                       {gauge, []string{"backend", "host"}},
	"chatgpt_api_host_in_flight":                {gauge, []string{"backend", "host"}},
	"chatgpt_api_host_queue_depth":              {gauge, []string{"backend", "host"}},
	"chatgpt_api_host_circuit_breaker_state":    {gauge, []string{"backend", "host"}},
	"chatgpt_api_host_models_loaded":            {gauge, []string{"backend", "host"}},
	"chatgpt_api_host_model_loads_total":        {counter, []string{"backend", "host", "result"}},
	"chatgpt_api_pool_affinity_total":           {counter, []string{"backend", "host", "result"}},
	"chatgpt_api_open_streams":                  {gauge, nil},
	"chatgpt_api_build_info":                    {gauge, []string{"version", "goversion"}},
}

// prometheusMetrics are series Prometheus itself makes for every target.
var prometheusMetrics = map[string]metricSpec{
	"up": {gauge, nil},
}

// targetLabels are added by the scrape (ServiceMonitor or scrape-config.yml).
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

// resolveMetric maps a series name to its metric; histogram series carry a
// _bucket, _sum or _count suffix (and only _bucket has the le label).
func resolveMetric(name string, known map[string]metricSpec) (spec metricSpec, extra []string, ok bool) {
	if s, ok := known[name]; ok && s.kind != histogram {
		return s, nil, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, found := strings.CutSuffix(name, suffix)
		if s, ok := known[base]; found && ok && s.kind == histogram {
			if suffix == "_bucket" {
				return s, []string{"le"}, true
			}
			return s, nil, true
		}
	}
	return metricSpec{}, nil, false
}

var promqlParser = parser.NewParser(parser.Options{})

// checkExpr parses a PromQL expression and reports every selector that
// names a metric outside known (recorded names are allowed when given) and
// every label matcher or grouping label the selected metrics do not have.
func checkExpr(expr string, known map[string]metricSpec, recorded map[string]bool) (used []string, problems []string) {
	node, err := promqlParser.ParseExpr(expr)
	if err != nil {
		return nil, []string{fmt.Sprintf("does not parse: %v", err)}
	}
	// labelsOf returns the labels the selectors under n may carry; nil
	// when one of them is a recorded series (labels unknown).
	labelsOf := func(n parser.Node) map[string]bool {
		out := map[string]bool{"__name__": true}
		for _, l := range targetLabels {
			out[l] = true
		}
		unknown := false
		parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			spec, extra, ok := resolveMetric(vs.Name, known)
			if !ok {
				unknown = true
				return nil
			}
			for _, l := range append(slices.Clone(spec.labels), extra...) {
				out[l] = true
			}
			return nil
		})
		if unknown {
			return nil
		}
		return out
	}
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			if n.Name == "" {
				problems = append(problems, fmt.Sprintf("selector %s names no metric", n))
				return nil
			}
			used = append(used, n.Name)
			if _, _, ok := resolveMetric(n.Name, known); !ok {
				if !recorded[n.Name] {
					problems = append(problems, fmt.Sprintf("unknown metric %q", n.Name))
				}
				return nil
			}
			have := labelsOf(n)
			for _, m := range n.LabelMatchers {
				if !have[m.Name] {
					problems = append(problems, fmt.Sprintf("%s has no label %q", n.Name, m.Name))
				}
			}
		case *parser.AggregateExpr:
			if have := labelsOf(n.Expr); have != nil {
				for _, l := range n.Grouping {
					if !have[l] {
						problems = append(problems, fmt.Sprintf("%s by/without %q: no selected metric has that label", n.Op, l))
					}
				}
			}
		}
		return nil
	})
	return used, problems
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Record string `json:"record"`
			Alert  string `json:"alert"`
			Expr   string `json:"expr"`
		} `json:"rules"`
	} `json:"groups"`
}

func TestRuleMetrics(t *testing.T) {
	var rf ruleFile
	if err := yaml.Unmarshal(readFile(t, rulesPath), &rf); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	known := map[string]metricSpec{}
	for k, v := range serviceMetrics {
		known[k] = v
	}
	for k, v := range prometheusMetrics {
		known[k] = v
	}
	recorded := map[string]bool{}
	recordName := regexp.MustCompile(`^chatgpt_api:[a-z0-9_]+:[a-z0-9_]+$`)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				if !recordName.MatchString(r.Record) {
					t.Errorf("recording rule %q: want chatgpt_api:<metric>:<operations>", r.Record)
				}
				recorded[r.Record] = true
			}
		}
	}
	alerts := map[string]bool{}
	uses := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			name := r.Record + r.Alert
			if r.Alert != "" {
				alerts[r.Alert] = true
			}
			used, problems := checkExpr(r.Expr, known, recorded)
			for _, p := range problems {
				t.Errorf("%s rule %s: %s", rulesPath, name, p)
			}
			for _, u := range used {
				uses[u] = true
			}
		}
	}
	for _, want := range []string{"ChatGPTAPIBackendDown", "ChatGPTAPIAllBackendsDown", "ChatGPTAPIHighErrorRatio",
		"ChatGPTAPISlowTimeToFirstToken", "ChatGPTAPIHighFallbackRate"} {
		if !alerts[want] {
			t.Errorf("%s has no alert %s", rulesPath, want)
		}
	}
	if len(uses) < 5 {
		t.Errorf("%s uses only %v", rulesPath, keys(uses))
	}
}

// grafanaVar matches Grafana's template variables: $var, ${var}, ${var:fmt}.
var grafanaVar = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(:[A-Za-z]+)?\}|\$([A-Za-z0-9_]+)`)

// expandGrafana substitutes plausible values for Grafana's variables so the
// query parses as PromQL: intervals become 5m, others the regex ".*".
func expandGrafana(q string) string {
	return grafanaVar.ReplaceAllStringFunc(q, func(m string) string {
		sm := grafanaVar.FindStringSubmatch(m)
		name := sm[1] + sm[3]
		switch name {
		case "__rate_interval", "__interval", "__range", "__range_s":
			return "5m"
		}
		return ".*"
	})
}

// labelValuesQuery matches a variable query label_values(selector, label).
var labelValuesQuery = regexp.MustCompile(`^\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // collapsed rows
}

func TestDashboards(t *testing.T) {
	files, err := filepath.Glob(dashboardsGlob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards match %s (%v)", dashboardsGlob, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var d dashboard
			if err := json.Unmarshal(readFile(t, f), &d); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if d.UID == "" || d.Title == "" {
				t.Error("the dashboard needs a uid and a title")
			}
			// The data source is a variable, not a uid of one installation.
			dsVar := ""
			for _, v := range d.Templating.List {
				if v.Type == "datasource" && string(v.Query) == `"prometheus"` {
					dsVar = v.Name
				}
			}
			if dsVar == "" {
				t.Fatal("no data source variable of type prometheus")
			}
			wantDS := "${" + dsVar + "}"
			checkDS := func(where string, ds *datasourceRef) {
				if ds == nil || ds.UID != wantDS {
					t.Errorf("%s: datasource %+v, want uid %s", where, ds, wantDS)
				}
			}
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				checkDS("variable "+v.Name, v.Datasource)
				var q struct {
					Query string `json:"query"`
				}
				if err := json.Unmarshal(v.Query, &q); err != nil {
					_ = json.Unmarshal(v.Query, &q.Query) // older plain-string form
				}
				sm := labelValuesQuery.FindStringSubmatch(q.Query)
				if sm == nil {
					t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q.Query)
					continue
				}
				_, problems := checkExpr(expandGrafana(sm[1]), serviceMetrics, nil)
				for _, p := range problems {
					t.Errorf("variable %s: %s", v.Name, p)
				}
			}

			ids := map[int]string{}
			uses := map[string]bool{}
			var walk func(ps []panel)
			walk = func(ps []panel) {
				for _, p := range ps {
					where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
					if prev, dup := ids[p.ID]; dup || p.ID == 0 {
						t.Errorf("%s: id not unique (also %q)", where, prev)
					}
					ids[p.ID] = p.Title
					if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
						t.Errorf("%s: gridPos %+v outside the 24-column grid", where, p.GridPos)
					}
					walk(p.Panels)
					if p.Type == "row" {
						continue
					}
					checkDS(where, p.Datasource)
					if len(p.Targets) == 0 {
						t.Errorf("%s: no query", where)
					}
					for _, tg := range p.Targets {
						checkDS(where+" target "+tg.RefID, tg.Datasource)
						used, problems := checkExpr(expandGrafana(tg.Expr), serviceMetrics, nil)
						for _, pr := range problems {
							t.Errorf("%s target %s: %s\n\t%s", where, tg.RefID, pr, tg.Expr)
						}
						for _, u := range used {
							uses[u] = true
						}
					}
				}
			}
			walk(d.Panels)

			// Every metric of the service has a panel.
			for name, spec := range serviceMetrics {
				series := name
				if spec.kind == histogram {
					series += "_bucket"
				}
				if !uses[series] {
					t.Errorf("no panel shows %s", series)
				}
			}
		})
	}
}

// TestMetricChecker proves the checker catches what it is for.
func TestMetricChecker(t *testing.T) {
	for expr, want := range map[string]string{
		`rate(chatgpt_api_http_request_total[5m])`:                            `unknown metric "chatgpt_api_http_request_total"`,
		`chatgpt_api_open_streams_bucket`:                                     `unknown metric`,
		`histogram_quantile(0.9, rate(chatgpt_api_tokens_total_bucket[5m]))`:  `unknown metric`,
		`sum by (route) (rate(chatgpt_api_tokens_total[5m]))`:                 `no selected metric has that label`,
		`chatgpt_api_backend_up{model="x"}`:                                   `has no label "model"`,
		`sum(rate(chatgpt_api_http_requests_total[5m])`:                       `does not parse`,
		`{__name__=~"chatgpt_api_.*"}`:                                        `names no metric`,
		`sum by (le) (rate(chatgpt_api_upstream_duration_seconds_count[5m]))`: `no selected metric has that label`,
	} {
		_, problems := checkExpr(expr, serviceMetrics, nil)
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("%s: problems %q, want one containing %q", expr, problems, want)
		}
	}
	ok := `histogram_quantile(0.95, sum by (namespace, le) (rate(chatgpt_api_time_to_first_token_seconds_bucket{job=~".*"}[5m])))`
	if _, problems := checkExpr(ok, serviceMetrics, nil); len(problems) > 0 {
		t.Errorf("%s: %q", ok, problems)
	}
	if got := expandGrafana(`rate(x{job=~"$job", ns=~"${namespace:regex}"}[$__rate_interval])`); got != `rate(x{job=~".*", ns=~".*"}[5m])` {
		t.Errorf("expandGrafana: %s", got)
	}
}
