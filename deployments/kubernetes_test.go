package deployments

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const (
	appName       = "chatgpt-api"
	redisName     = "chatgpt-api-redis" // the Deployment, Service and NetworkPolicy of redis.yaml
	secretName    = "chatgpt-api-secrets"
	configMapName = "chatgpt-api-config" // before kustomize's hash suffix
	configKey     = "config.yaml"
)

// manifests are the objects of a rendered kustomization, decoded into their
// types. Deployments, Services and NetworkPolicies are told apart by name:
// the service's (appName) and the Redis of the stored responses (redisName).
type manifests struct {
	Deployment     *appsv1.Deployment
	Service        *corev1.Service
	ConfigMap      *corev1.ConfigMap
	ServiceAccount *corev1.ServiceAccount
	HPA            *autoscalingv2.HorizontalPodAutoscaler
	PDB            *policyv1.PodDisruptionBudget
	ServiceMonitor *monitoringv1.ServiceMonitor
	NetworkPolicy  *networkingv1.NetworkPolicy

	RedisDeployment    *appsv1.Deployment
	RedisService       *corev1.Service
	RedisNetworkPolicy *networkingv1.NetworkPolicy

	PVC *corev1.PersistentVolumeClaim // overlays/single-replica: the embedded store's volume
}

// slot returns where an object of apiVersion/kind named name is decoded
// to; every object a kustomization may contain must be listed here.
func (m *manifests) slot(apiVersion, kind, name string) (any, error) {
	byName := func(app, redis any) (any, error) {
		switch name {
		case appName:
			return app, nil
		case redisName:
			return redis, nil
		}
		return nil, fmt.Errorf("unexpected %s %s named %q: add it to the test", apiVersion, kind, name)
	}
	switch apiVersion + "/" + kind {
	case "apps/v1/Deployment":
		p, err := byName(&m.Deployment, &m.RedisDeployment)
		if err != nil {
			return nil, err
		}
		return setOnce(p.(**appsv1.Deployment))
	case "v1/Service":
		p, err := byName(&m.Service, &m.RedisService)
		if err != nil {
			return nil, err
		}
		return setOnce(p.(**corev1.Service))
	case "v1/PersistentVolumeClaim":
		return setOnce(&m.PVC)
	case "v1/ConfigMap":
		return setOnce(&m.ConfigMap)
	case "v1/ServiceAccount":
		return setOnce(&m.ServiceAccount)
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return setOnce(&m.HPA)
	case "policy/v1/PodDisruptionBudget":
		return setOnce(&m.PDB)
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return setOnce(&m.ServiceMonitor)
	case "networking.k8s.io/v1/NetworkPolicy":
		p, err := byName(&m.NetworkPolicy, &m.RedisNetworkPolicy)
		if err != nil {
			return nil, err
		}
		return setOnce(p.(**networkingv1.NetworkPolicy))
	}
	return nil, fmt.Errorf("unexpected object %s %s: add its type to the test", apiVersion, kind)
}

// networkPolicies are the rendered NetworkPolicies.
func (m *manifests) networkPolicies() []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for _, np := range []*networkingv1.NetworkPolicy{m.NetworkPolicy, m.RedisNetworkPolicy} {
		if np != nil {
			out = append(out, np)
		}
	}
	return out
}

// objects are every rendered object.
func (m *manifests) objects() []metav1.Object {
	var out []metav1.Object
	for _, o := range []metav1.Object{m.Deployment, m.Service, m.ConfigMap, m.ServiceAccount, m.HPA, m.PDB, m.ServiceMonitor, m.NetworkPolicy,
		m.RedisDeployment, m.RedisService, m.RedisNetworkPolicy, m.PVC} {
		if o != nil && !reflect.ValueOf(o).IsNil() {
			out = append(out, o)
		}
	}
	return out
}

// services are the rendered Services.
func (m *manifests) services() []*corev1.Service {
	var out []*corev1.Service
	for _, s := range []*corev1.Service{m.Service, m.RedisService} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

func setOnce[T any](p **T) (any, error) {
	if *p != nil {
		return nil, fmt.Errorf("more than one %T", *p)
	}
	*p = new(T)
	return *p, nil
}

// decodeStrict decodes JSON into a typed object the way the API server's
// strict field validation does: case-sensitive field names, and unknown or
// duplicate fields are errors.
func decodeStrict(data []byte, into any) error {
	strictErrs, err := kjson.UnmarshalStrict(data, into, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// render builds the kustomization in dir of fSys with the kustomize API
// (what `kubectl apply -k` and `kustomize build` do) and decodes every
// object strictly.
func render(fSys filesys.FileSystem, dir string) (*manifests, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(fSys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	m := &manifests{}
	for _, res := range rm.Resources() {
		id := res.CurId()
		data, err := res.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		var meta metav1.TypeMeta
		if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &meta); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		into, err := m.slot(meta.APIVersion, meta.Kind, res.GetName())
		if err != nil {
			return nil, err
		}
		if err := decodeStrict(data, into); err != nil {
			return nil, fmt.Errorf("%s %s/%s: %w", meta.APIVersion, meta.Kind, res.GetName(), err)
		}
	}
	return m, nil
}

// layout is what a kustomization is expected to hold.
type layout struct {
	dir string
	// namespace of every object ("" in the base: the current one); the
	// Redis URL's short host name relies on one namespace for all.
	namespace string
	// scaled: several replicas (2, the HPA 2..10, the PDB), so the stored
	// responses are in Redis. Otherwise one replica with the embedded store
	// on a PersistentVolumeClaim.
	scaled bool
	// redis: the in-cluster Redis of redis.yaml is part of it.
	redis bool
}

// kustomizations are rendered and checked: the base and every overlay.
var kustomizations = []layout{
	{dir: kustomizeDir, scaled: true, redis: true},
	{dir: exampleOverlay, namespace: "llm", scaled: true, redis: true},
	{dir: managedRedisOverlay, scaled: true},
	{dir: singleReplicaOverlay},
}

// presence reports the objects l wants that m lacks, and those it has but
// should not.
func (m *manifests) presence(l layout) error {
	var errs []error
	for _, o := range []struct {
		name      string
		has, want bool
	}{
		{"Deployment " + appName, m.Deployment != nil, true},
		{"Service " + appName, m.Service != nil, true},
		{"ConfigMap", m.ConfigMap != nil, true},
		{"ServiceAccount", m.ServiceAccount != nil, true},
		{"ServiceMonitor", m.ServiceMonitor != nil, true},
		{"NetworkPolicy " + appName, m.NetworkPolicy != nil, true},
		{"HorizontalPodAutoscaler", m.HPA != nil, l.scaled},
		{"PodDisruptionBudget", m.PDB != nil, l.scaled},
		{"Deployment " + redisName, m.RedisDeployment != nil, l.redis},
		{"Service " + redisName, m.RedisService != nil, l.redis},
		{"NetworkPolicy " + redisName, m.RedisNetworkPolicy != nil, l.redis},
		{"PersistentVolumeClaim", m.PVC != nil, !l.scaled},
	} {
		switch {
		case o.want && !o.has:
			errs = append(errs, fmt.Errorf("%s: no %s", l.dir, o.name))
		case !o.want && o.has:
			errs = append(errs, fmt.Errorf("%s: unexpected %s", l.dir, o.name))
		}
	}
	return errors.Join(errs...)
}

func renderLayout(t *testing.T, l layout) *manifests {
	t.Helper()
	m, err := render(filesys.MakeFsOnDisk(), l.dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.presence(l); err != nil {
		t.Fatal(err)
	}
	return m
}

func layoutOf(t *testing.T, dir string) layout {
	t.Helper()
	for _, l := range kustomizations {
		if l.dir == dir {
			return l
		}
	}
	t.Fatalf("%s is not in kustomizations", dir)
	return layout{}
}

// appContainer is the service's container of the Deployment.
func appContainer(t *testing.T, m *manifests) *corev1.Container {
	t.Helper()
	cs := m.Deployment.Spec.Template.Spec.Containers
	for i := range cs {
		if cs[i].Name == appName {
			return &cs[i]
		}
	}
	t.Fatalf("the Deployment has no container %q", appName)
	return nil
}

// containerPort resolves a probe/Service port (number or name) to the
// container's port number; 0 when it names no port of the container.
func containerPort(c *corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	return 0
}

func selects(t *testing.T, sel *metav1.LabelSelector, lbls map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(lbls))
}

func TestKustomizations(t *testing.T) {
	for _, l := range kustomizations {
		t.Run(l.dir, func(t *testing.T) { checkManifests(t, renderLayout(t, l), l) })
	}
}

// TestExampleOverlay checks that the overlay's changes land.
func TestExampleOverlay(t *testing.T) {
	m := renderLayout(t, layoutOf(t, exampleOverlay))
	if len(m.objects()) != 11 {
		t.Errorf("%d objects, want the base's 11", len(m.objects()))
	}
	for _, o := range m.objects() {
		if o.GetNamespace() != "llm" {
			t.Errorf("%s: namespace %q, want llm", o.GetName(), o.GetNamespace())
		}
	}
	c := appContainer(t, m)
	if c.Image != "registry.example.com/llm/chatgpt-api:v1.0.0" {
		t.Errorf("image %q", c.Image)
	}
	if v, _ := envValue(c, "GATEWAY_URL"); !strings.Contains(v, "svc.cluster.local") {
		t.Errorf("GATEWAY_URL %q: the overlay's patch did not apply", v)
	}
	if e := envVar(c, "GATEWAY_API_KEY"); e == nil || e.ValueFrom == nil {
		t.Error("the env patch dropped GATEWAY_API_KEY")
	}
	if m.ServiceMonitor.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor labels %v", m.ServiceMonitor.Labels)
	}
}

func checkManifests(t *testing.T, m *manifests, l layout) {
	cfg := loadServiceConfig(t)
	img := loadRuntimeImage(t)
	c := appContainer(t, m)
	pod := m.Deployment.Spec.Template
	httpPort := containerPort(c, intstr.FromString("http"))

	t.Run("namespace", func(t *testing.T) {
		for _, o := range m.objects() {
			if o.GetNamespace() != l.namespace {
				t.Errorf("%s: namespace %q, want %q", o.GetName(), o.GetNamespace(), l.namespace)
			}
		}
	})

	t.Run("ports", func(t *testing.T) {
		if httpPort != int32(cfg.Port) || httpPort != 3111 {
			t.Errorf("container port http=%d, want 3111 = server.port %d of %s", httpPort, cfg.Port, serviceConfigPath)
		}
		if m.Service.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("Service type %q, want ClusterIP", m.Service.Spec.Type)
		}
		if len(m.Service.Spec.Ports) != 1 {
			t.Fatalf("Service ports %v, want one", m.Service.Spec.Ports)
		}
		sp := m.Service.Spec.Ports[0]
		if sp.Name != "http" || sp.Port != 3111 {
			t.Errorf("Service port %s=%d, want http=3111", sp.Name, sp.Port)
		}
		if got := containerPort(c, sp.TargetPort); got != httpPort {
			t.Errorf("Service targetPort %s resolves to container port %d, want %d", sp.TargetPort.String(), got, httpPort)
		}
		if !selects(t, &metav1.LabelSelector{MatchLabels: m.Service.Spec.Selector}, pod.Labels) {
			t.Errorf("Service selector %v does not select the pods %v", m.Service.Spec.Selector, pod.Labels)
		}
	})

	t.Run("probes", func(t *testing.T) {
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
			path  string
		}{{"liveness", c.LivenessProbe, "/livez"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"startup", c.StartupProbe, "/livez"}} {
			if p.probe == nil {
				if p.name != "startup" {
					t.Errorf("no %s probe", p.name)
				}
				continue
			}
			g := p.probe.HTTPGet
			if g == nil {
				t.Errorf("%s probe is not httpGet (the image has no shell for exec probes)", p.name)
				continue
			}
			if g.Path != p.path {
				t.Errorf("%s probe path %q, want %q", p.name, g.Path, p.path)
			}
			if got := containerPort(c, g.Port); got != httpPort {
				t.Errorf("%s probe port %s resolves to %d, want the container port %d", p.name, g.Port.String(), got, httpPort)
			}
		}
	})

	t.Run("config mount", func(t *testing.T) {
		want := imageConfigPath(t)
		var vol *corev1.Volume
		for i, v := range pod.Spec.Volumes {
			if v.ConfigMap != nil && v.ConfigMap.Name == m.ConfigMap.Name {
				vol = &pod.Spec.Volumes[i]
			}
		}
		if vol == nil {
			t.Fatalf("no volume uses the generated ConfigMap %s", m.ConfigMap.Name)
		}
		var files []string
		for _, vm := range c.VolumeMounts {
			if vm.Name != vol.Name {
				continue
			}
			if vm.SubPath != "" {
				if vm.SubPath == configKey || itemPath(vol.ConfigMap, configKey) == vm.SubPath {
					files = append(files, vm.MountPath)
				}
				continue
			}
			if p := itemPath(vol.ConfigMap, configKey); p != "" {
				files = append(files, filepath.ToSlash(filepath.Join(vm.MountPath, p)))
			}
		}
		if !slices.Contains(files, want) {
			t.Errorf("%s of the ConfigMap is mounted at %q, want %s (the Dockerfile ENTRYPOINT's --config)", configKey, files, want)
		}
	})

	t.Run("configmap is configs/config.yaml", func(t *testing.T) {
		if !strings.HasPrefix(m.ConfigMap.Name, configMapName+"-") {
			t.Errorf("ConfigMap %q: want the generated %s-<hash>", m.ConfigMap.Name, configMapName)
		}
		want := readFile(t, serviceConfigPath)
		if got, ok := m.ConfigMap.Data[configKey]; !ok || got != string(want) {
			t.Errorf("ConfigMap %s key %s differs from %s; run: cp configs/config.yaml deployments/kubernetes/config.yaml",
				m.ConfigMap.Name, configKey, serviceConfigPath)
		}
		if len(m.ConfigMap.Data) != 1 || len(m.ConfigMap.BinaryData) != 0 {
			t.Errorf("ConfigMap keys %v, want only %s", keys(m.ConfigMap.Data), configKey)
		}
	})

	t.Run("graceful shutdown", func(t *testing.T) {
		drain := cfg.DrainTimeout
		if v, ok := envValue(c, "DRAIN_TIMEOUT"); ok {
			d, err := parseServiceDuration(v)
			if err != nil {
				t.Fatalf("env DRAIN_TIMEOUT=%q: %v", v, err)
			}
			if d > drain {
				drain = d
			}
		} else {
			t.Error("env DRAIN_TIMEOUT is not set explicitly")
		}
		var preStop time.Duration
		if ps := lifecycleHandler(c, "preStop"); ps != nil {
			if ps.Sleep == nil {
				t.Errorf("preStop is not the native sleep action (the distroless image has no shell): %+v", ps)
			} else {
				preStop = time.Duration(ps.Sleep.Seconds) * time.Second
			}
		} else {
			t.Error("no preStop hook: the endpoint may still get traffic while the pod drains")
		}
		grace := m.Deployment.Spec.Template.Spec.TerminationGracePeriodSeconds
		if grace == nil {
			t.Fatal("terminationGracePeriodSeconds is not set (default 30s)")
		}
		if g := time.Duration(*grace) * time.Second; g <= drain+preStop {
			t.Errorf("terminationGracePeriodSeconds %v <= drain timeout %v + preStop %v: open streams get SIGKILLed", g, drain, preStop)
		}
		if ps := lifecycleHandler(c, "postStart"); ps != nil && ps.Exec != nil {
			t.Error("postStart uses exec: the image has no shell")
		}
	})

	t.Run("security context", func(t *testing.T) {
		for _, p := range securityProblems(&pod.Spec, c, strings.Split(imageUser, ":")[0]) {
			t.Error(p)
		}
	})

	t.Run("resources", func(t *testing.T) {
		r := c.Resources
		for name, want := range map[string]string{"requests.cpu": "100m", "requests.memory": "64Mi", "limits.cpu": "1", "limits.memory": "256Mi"} {
			list := r.Requests
			if strings.HasPrefix(name, "limits.") {
				list = r.Limits
			}
			q, ok := list[corev1.ResourceName(strings.SplitN(name, ".", 2)[1])]
			if !ok || q.String() != want {
				t.Errorf("%s = %v, want %s", name, q.String(), want)
			}
		}
		for res, req := range r.Requests {
			if lim, ok := r.Limits[res]; ok && req.Cmp(lim) > 0 {
				t.Errorf("%s request %s > limit %s", res, req.String(), lim.String())
			}
		}
	})

	t.Run("environment", func(t *testing.T) {
		for _, want := range []struct{ env, key string }{{"GATEWAY_API_KEY", "gateway-api-key"}, {"CHATGPT_API_KEYS", "api-keys"}} {
			e := envVar(c, want.env)
			if e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("env %s is not taken from a Secret", want.env)
				continue
			}
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != secretName || ref.Key != want.key || ref.Optional == nil || !*ref.Optional {
				t.Errorf("env %s from secret %s key %s optional %v, want %s key %s optional", want.env, ref.Name, ref.Key, deref(ref.Optional), secretName, want.key)
			}
		}
		for _, name := range []string{"GATEWAY_URL", "OLLAMA_URL"} {
			if _, ok := envValue(c, name); !ok {
				t.Errorf("env %s has no example value", name)
			}
		}
		for _, e := range c.Env {
			if e.Value != "" && strings.Contains(strings.ToLower(e.Name), "key") {
				t.Errorf("env %s has a literal value: secrets belong in %s", e.Name, secretName)
			}
			if e.Value != "" && strings.Contains(e.Value, "://") {
				if u, err := url.Parse(e.Value); err == nil && u.User != nil {
					if _, ok := u.User.Password(); ok {
						t.Errorf("env %s holds a password in a literal URL: take the URL from %s", e.Name, secretName)
					}
				}
			}
		}
	})

	t.Run("service links", func(t *testing.T) {
		for _, p := range serviceLinkProblems(m) {
			t.Error(p)
		}
	})

	t.Run("response store", func(t *testing.T) {
		for _, p := range responseStoreProblems(m, cfg, img) {
			t.Error(p)
		}
	})

	if l.redis {
		t.Run("redis", func(t *testing.T) {
			for _, p := range redisProblems(m, cfg) {
				t.Error(p)
			}
		})
		t.Run("redis networkpolicy", func(t *testing.T) {
			for _, p := range redisNetworkProblems(m) {
				t.Error(p)
			}
		})
	}

	t.Run("deployment", func(t *testing.T) {
		d := m.Deployment
		if d.Name != appName {
			t.Errorf("Deployment name %q", d.Name)
		}
		want := int32(2)
		if !l.scaled {
			want = 1
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != want {
			t.Errorf("replicas %v, want %d", deref(d.Spec.Replicas), want)
		}
		if !selects(t, d.Spec.Selector, pod.Labels) {
			t.Errorf("Deployment selector %v does not select its template labels %v", d.Spec.Selector, pod.Labels)
		}
		if sa := pod.Spec.ServiceAccountName; sa != "" && sa != m.ServiceAccount.Name {
			t.Errorf("serviceAccountName %q, but the base defines %q", sa, m.ServiceAccount.Name)
		}
		for _, v := range pod.Spec.Volumes {
			if v.Secret != nil || v.HostPath != nil {
				t.Errorf("volume %s mounts a Secret or host path", v.Name)
			}
		}
	})

	t.Run("servicemonitor", func(t *testing.T) {
		sm := m.ServiceMonitor
		if !selects(t, &sm.Spec.Selector, m.Service.Labels) {
			t.Errorf("ServiceMonitor selector %v does not select the Service labels %v", sm.Spec.Selector, m.Service.Labels)
		}
		if len(sm.Spec.Endpoints) != 1 {
			t.Fatalf("ServiceMonitor endpoints %d, want 1", len(sm.Spec.Endpoints))
		}
		ep := sm.Spec.Endpoints[0]
		portNames := []string{}
		for _, p := range m.Service.Spec.Ports {
			portNames = append(portNames, p.Name)
		}
		if ep.Port != "http" || !slices.Contains(portNames, ep.Port) {
			t.Errorf("ServiceMonitor endpoint port %q, want http, one of the Service ports %v", ep.Port, portNames)
		}
		if ep.Path != "/metrics" || ep.Interval != "15s" {
			t.Errorf("ServiceMonitor endpoint path %q interval %q, want /metrics every 15s", ep.Path, ep.Interval)
		}
		if m.RedisService != nil && selects(t, &sm.Spec.Selector, m.RedisService.Labels) {
			t.Errorf("ServiceMonitor selector %v also selects the Redis Service %v (it has no /metrics)", sm.Spec.Selector, m.RedisService.Labels)
		}
	})

	t.Run("hpa and pdb", func(t *testing.T) {
		if !l.scaled {
			if m.HPA != nil || m.PDB != nil {
				t.Error("one replica with the embedded store: no HPA and no PDB (minAvailable 1 would block every drain)")
			}
			if s := m.Deployment.Spec.Strategy; s.Type != appsv1.RecreateDeploymentStrategyType || s.RollingUpdate != nil {
				t.Errorf("strategy %+v, want Recreate: a surge pod could not open the store the old pod holds", s)
			}
			return
		}
		h := m.HPA
		ref := h.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != m.Deployment.Name {
			t.Errorf("HPA targets %s %s/%s, want apps/v1 Deployment/%s", ref.APIVersion, ref.Kind, ref.Name, m.Deployment.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 10 {
			t.Errorf("HPA replicas %v..%d, want 2..10", deref(h.Spec.MinReplicas), h.Spec.MaxReplicas)
		}
		cpu := false
		for _, mt := range h.Spec.Metrics {
			if mt.Type == autoscalingv2.ResourceMetricSourceType && mt.Resource != nil && mt.Resource.Name == corev1.ResourceCPU &&
				mt.Resource.Target.Type == autoscalingv2.UtilizationMetricType && mt.Resource.Target.AverageUtilization != nil && *mt.Resource.Target.AverageUtilization == 70 {
				cpu = true
			}
		}
		if !cpu {
			t.Errorf("HPA metrics %+v: want CPU utilization 70%%", h.Spec.Metrics)
		}
		if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
			t.Error("the HPA scales on CPU utilization but the container requests no CPU")
		}

		p := m.PDB
		if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.String() != "1" {
			t.Errorf("PDB minAvailable %v, want 1", p.Spec.MinAvailable)
		}
		if !selects(t, p.Spec.Selector, pod.Labels) || !selects(t, p.Spec.Selector, m.Deployment.Spec.Selector.MatchLabels) {
			t.Errorf("PDB selector %v does not select the Deployment's pods %v", p.Spec.Selector, pod.Labels)
		}
	})

	t.Run("networkpolicy", func(t *testing.T) {
		np := m.NetworkPolicy
		if !selects(t, &np.Spec.PodSelector, pod.Labels) {
			t.Errorf("NetworkPolicy podSelector %v does not select the pods", np.Spec.PodSelector)
		}
		allowed := false
		for _, r := range np.Spec.Ingress {
			for _, p := range r.Ports {
				if p.Port != nil && containerPort(c, *p.Port) == httpPort {
					allowed = true
				}
			}
		}
		if !allowed {
			t.Errorf("NetworkPolicy admits no ingress on the container port %d", httpPort)
		}
		egress := map[string]bool{}
		for _, r := range np.Spec.Egress {
			for _, p := range r.Ports {
				if p.Port != nil {
					egress[fmt.Sprintf("%s/%s", deref(p.Protocol), p.Port.String())] = true
				}
			}
		}
		for _, want := range []string{"UDP/53", "TCP/53", "TCP/80", "TCP/443", "TCP/8080", "TCP/11434"} {
			if !egress[want] {
				t.Errorf("NetworkPolicy egress lacks %s (have %v)", want, keys(egress))
			}
		}
	})
}

// The copy kustomize reads must stay identical to the service's config.
func TestKustomizeConfigCopy(t *testing.T) {
	copyPath := filepath.Join(kustomizeDir, configKey)
	if !bytes.Equal(readFile(t, copyPath), readFile(t, serviceConfigPath)) {
		t.Errorf("%s differs from %s; run: cp configs/config.yaml deployments/kubernetes/config.yaml", copyPath, serviceConfigPath)
	}
}

// TestStrictDecoding proves the decoding above rejects what the API server
// would: a misspelled or wrongly-cased field in an in-memory copy of the base.
func TestStrictDecoding(t *testing.T) {
	for _, tc := range []struct {
		file, old, new, wantErr string
	}{
		{"deployment.yaml", "containerPort: 3111", "containerPorrt: 3111", `unknown field "spec.template.spec.containers[0].ports[0].containerPorrt"`},
		{"deployment.yaml", "readOnlyRootFilesystem: true", "ReadOnlyRootFilesystem: true", `unknown field "spec.template.spec.containers[0].securityContext.ReadOnlyRootFilesystem"`},
		{"service.yaml", "targetPort: http", "targetport: http", `unknown field "spec.ports[0].targetport"`},
		{"servicemonitor.yaml", "interval: 15s", "intervall: 15s", `unknown field "spec.endpoints[0].intervall"`},
		{"hpa.yaml", "minReplicas: 2", "minReplica: 2", `unknown field "spec.minReplica"`},
		{"pdb.yaml", "minAvailable: 1", "minAvailible: 1", `unknown field "spec.minAvailible"`},
		{"networkpolicy.yaml", "policyTypes:", "policyType:", `unknown field "spec.policyType"`},
		{"kustomization.yaml", "configMapGenerator:", "configMapGenerater:", `unknown field "configMapGenerater"`},
		{"redis.yaml", "tcpSocket:", "tcpsocket:", `unknown field "spec.template.spec.containers[0].livenessProbe.tcpsocket"`},
		{"redis.yaml", "sizeLimit: 64Mi", "sizeLimt: 64Mi", `unknown field "spec.template.spec.volumes[0].emptyDir.sizeLimt"`},
		{"redis.yaml", "targetPort: redis", "targetPorts: redis", `unknown field "spec.ports[0].targetPorts"`},
		{"redis.yaml", "    - from:", "    - form:", `unknown field "spec.ingress[0].form"`},
	} {
		t.Run(tc.file+"/"+tc.new, func(t *testing.T) {
			fSys := copyToMemory(t, kustomizeDir)
			path := filepath.Join("/base", tc.file)
			data, err := fSys.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Count(data, []byte(tc.old)) != 1 {
				t.Fatalf("%s: %q occurs %d times, want once", tc.file, tc.old, bytes.Count(data, []byte(tc.old)))
			}
			if err := fSys.WriteFile(path, bytes.Replace(data, []byte(tc.old), []byte(tc.new), 1)); err != nil {
				t.Fatal(err)
			}
			_, err = render(fSys, "/base")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("render with %q: err %v, want one containing %s", tc.new, err, tc.wantErr)
			}
		})
	}
	t.Run("unmodified copy renders", func(t *testing.T) {
		if _, err := render(copyToMemory(t, kustomizeDir), "/base"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unknown kind", func(t *testing.T) {
		if _, err := (&manifests{}).slot("v1", "Pod", appName); err == nil {
			t.Fatal("an unexpected kind was accepted")
		}
	})
	t.Run("unknown name", func(t *testing.T) {
		if _, err := (&manifests{}).slot("apps/v1", "Deployment", "other"); err == nil {
			t.Fatal("an unexpected Deployment was accepted")
		}
	})
}

// copyToMemory copies the files of dir into /base of an in-memory file system.
func copyToMemory(t *testing.T, dir string) filesys.FileSystem {
	t.Helper()
	fSys := filesys.MakeFsInMemory()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return fSys.WriteFile(filepath.Join("/base", rel), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	return fSys
}

func lifecycleHandler(c *corev1.Container, which string) *corev1.LifecycleHandler {
	if c.Lifecycle == nil {
		return nil
	}
	if which == "preStop" {
		return c.Lifecycle.PreStop
	}
	return c.Lifecycle.PostStart
}

func envVar(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// envValue is the literal value of an environment variable.
func envValue(c *corev1.Container, name string) (string, bool) {
	e := envVar(c, name)
	if e == nil || e.ValueFrom != nil {
		return "", false
	}
	return e.Value, true
}

func deref[T any](p *T) any {
	if p == nil {
		return "<unset>"
	}
	return *p
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// itemPath is the file name under which a ConfigMap volume projects key:
// the key itself without items, the item's path with them, "" when the
// items leave the key out.
func itemPath(v *corev1.ConfigMapVolumeSource, key string) string {
	if len(v.Items) == 0 {
		return key
	}
	for _, it := range v.Items {
		if it.Key == key {
			return it.Path
		}
	}
	return ""
}
