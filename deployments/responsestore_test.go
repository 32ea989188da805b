package deployments

// Where /v1/responses keeps the responses it answers, checked across the
// rendered objects: the service's RESPONSES_REDIS_URL names a Service of
// the render on a port it exposes, in front of the Redis of redis.yaml; or,
// with one replica, RESPONSES_DATA_DIR is on a PersistentVolumeClaim. Then
// the Redis itself (pinned 7.x image, no persistence, maxmemory within its
// limit, eviction of what expires first, security context, probes) and the
// NetworkPolicies (the service reaches Redis; nothing else does; Redis
// reaches nothing).
//
// The checks return their problems rather than failing a test, so that
// TestResponseStoreChecksFail can prove each one on a broken copy.

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const (
	redisContainerName = "redis"
	redisDefaultPort   = 6379
	// redisImage: the official image, a pinned 7.x release (SET ... PXAT,
	// which the service sends, needs 6.2 or later), optionally by digest.
	redisImagePattern = `^redis:7\.\d+\.\d+(-(alpine|bookworm)[0-9.]*)?(@sha256:[0-9a-f]{64})?$`
	// Redis's maxmemory within its container's memory limit: the rest is
	// Redis's own overhead (fragmentation, client buffers).
	redisMaxMemoryMin = 0.5
	redisMaxMemoryMax = 0.8
	// redisMaxMemoryResponses: maxmemory holds at least this many of the
	// largest responses (responses.max_bytes).
	redisMaxMemoryResponses = 16
)

// findContainer returns the container name of the pod spec, or nil.
func findContainer(ps *corev1.PodSpec, name string) *corev1.Container {
	for i := range ps.Containers {
		if ps.Containers[i].Name == name {
			return &ps.Containers[i]
		}
	}
	return nil
}

// selectorMatches is NetworkPolicy selector semantics: an empty selector
// selects every pod.
func selectorMatches(sel *metav1.LabelSelector, lbls map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(lbls))
}

// securityProblems checks a container and its pod the way the service's
// own are: non-root (uid wantUID, or any but 0 when wantUID is ""),
// read-only root file system, no privilege escalation, no capabilities,
// RuntimeDefault seccomp, no host namespaces.
func securityProblems(ps *corev1.PodSpec, c *corev1.Container, wantUID string) (p []string) {
	psc, sc := ps.SecurityContext, c.SecurityContext
	if sc == nil {
		return []string{fmt.Sprintf("container %s has no securityContext", c.Name)}
	}
	nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
	if !nonRoot {
		p = append(p, fmt.Sprintf("container %s: runAsNonRoot is not true", c.Name))
	}
	uid := sc.RunAsUser
	if uid == nil && psc != nil {
		uid = psc.RunAsUser
	}
	switch {
	case uid == nil:
		p = append(p, fmt.Sprintf("container %s: runAsUser is not set", c.Name))
	case wantUID != "" && fmt.Sprint(*uid) != wantUID:
		p = append(p, fmt.Sprintf("container %s: runAsUser %d, want %s (the image's USER)", c.Name, *uid, wantUID))
	case *uid == 0:
		p = append(p, fmt.Sprintf("container %s: runAsUser 0 (root)", c.Name))
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		p = append(p, fmt.Sprintf("container %s: readOnlyRootFilesystem is not true", c.Name))
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		p = append(p, fmt.Sprintf("container %s: allowPrivilegeEscalation is not false", c.Name))
	}
	if sc.Privileged != nil && *sc.Privileged {
		p = append(p, fmt.Sprintf("container %s is privileged", c.Name))
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		p = append(p, fmt.Sprintf("container %s: capabilities %+v, want drop [ALL] and no add", c.Name, sc.Capabilities))
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil && psc != nil {
		seccomp = psc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p = append(p, fmt.Sprintf("container %s: seccompProfile %+v, want RuntimeDefault", c.Name, seccomp))
	}
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		p = append(p, fmt.Sprintf("container %s: the pod shares a host namespace", c.Name))
	}
	return p
}

// serviceEnvKeys are the environment variables the service reads: envKeys
// in internal/app/config.go.
func serviceEnvKeys() ([]string, error) {
	file := filepath.Join(repoRoot, "internal", "app", "config.go")
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := regexp.MustCompile(`(?s)var envKeys = \[\]string\{(.*?)\}`).FindSubmatch(src)
	if m == nil {
		return nil, fmt.Errorf("%s declares no `var envKeys = []string{...}`", file)
	}
	var keys []string
	for _, k := range regexp.MustCompile(`"([A-Z0-9_]+)"`).FindAllSubmatch(m[1], -1) {
		keys = append(keys, string(k[1]))
	}
	if !slices.Contains(keys, "CHATGPT_API_PORT") || !slices.Contains(keys, "RESPONSES_REDIS_URL") {
		return nil, fmt.Errorf("%s: envKeys %v lacks CHATGPT_API_PORT or RESPONSES_REDIS_URL: has the list moved?", file, keys)
	}
	return keys, nil
}

// serviceLinkEnv are the variables the kubelet sets in every pod of the
// namespace for a Service (enableServiceLinks, on by default): as
// pkg/kubelet/envvars does, NAME_SERVICE_HOST, NAME_SERVICE_PORT[_PORTNAME]
// and the Docker-link NAME_PORT=tcp://ip:port, NAME_PORT_<port>_<PROTO>...
func serviceLinkEnv(svc *corev1.Service) []string {
	envName := func(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }
	prefix := envName(svc.Name)
	out := []string{prefix + "_SERVICE_HOST", prefix + "_SERVICE_PORT"}
	for i, sp := range svc.Spec.Ports {
		if sp.Name != "" {
			out = append(out, prefix+"_SERVICE_PORT_"+envName(sp.Name))
		}
		proto := string(sp.Protocol)
		if proto == "" {
			proto = "TCP"
		}
		pp := fmt.Sprintf("%s_PORT_%d_%s", prefix, sp.Port, strings.ToUpper(proto))
		if i == 0 {
			out = append(out, prefix+"_PORT")
		}
		out = append(out, pp, pp+"_PROTO", pp+"_PORT", pp+"_ADDR")
	}
	return out
}

// serviceLinkProblems: the service's pods must not get the kubelet's
// Service variables, one of which (CHATGPT_API_PORT, for the Service
// chatgpt-api) the service reads as its port.
func serviceLinkProblems(m *manifests) []string {
	ps := &m.Deployment.Spec.Template.Spec
	if ps.EnableServiceLinks != nil && !*ps.EnableServiceLinks {
		return nil
	}
	keys, err := serviceEnvKeys()
	if err != nil {
		return []string{err.Error()}
	}
	c := findContainer(ps, appName)
	var clashes []string
	for _, svc := range m.services() {
		for _, name := range serviceLinkEnv(svc) {
			if slices.Contains(keys, name) && (c == nil || envVar(c, name) == nil) {
				clashes = append(clashes, fmt.Sprintf("%s (Service %s)", name, svc.Name))
			}
		}
	}
	return []string{fmt.Sprintf("the service's pod spec does not set enableServiceLinks: false: the kubelet then sets variables for every Service "+
		"of the namespace, and the service reads %v of them (CHATGPT_API_PORT=tcp://<ip>:3111 stops its start-up)", clashes)}
}

// effectiveEnv is the literal value the service sees for name: the
// container's environment, else the image's ENV.
func effectiveEnv(c *corev1.Container, img runtimeImage, name string) (string, bool) {
	if v, ok := envValue(c, name); ok && strings.TrimSpace(v) != "" {
		return v, true
	}
	v, ok := img.Env[name]
	return v, ok && v != ""
}

// responseStoreProblems checks where the service keeps stored responses.
func responseStoreProblems(m *manifests, cfg serviceConfig, img runtimeImage) []string {
	c := findContainer(&m.Deployment.Spec.Template.Spec, appName)
	if c == nil {
		return []string{"the Deployment has no container " + appName}
	}
	e := envVar(c, "RESPONSES_REDIS_URL")
	switch {
	case e != nil && e.ValueFrom != nil:
		// A Redis of one's own, its URL (and password) in a Secret.
		var p []string
		ref := e.ValueFrom.SecretKeyRef
		if ref == nil {
			p = append(p, "RESPONSES_REDIS_URL comes from neither a literal value nor a Secret")
		} else if ref.Optional != nil && *ref.Optional {
			p = append(p, fmt.Sprintf("RESPONSES_REDIS_URL from secret %s key %s is optional: without it the service falls back to the embedded store, "+
				"on the read-only root file system and not shared by the replicas", ref.Name, ref.Key))
		}
		if e.Value != "" {
			p = append(p, "RESPONSES_REDIS_URL has both a value and valueFrom")
		}
		return p
	case e != nil && strings.TrimSpace(e.Value) != "":
		return redisURLProblems(m, e.Value)
	case cfg.Responses.RedisURL != "":
		return redisURLProblems(m, cfg.Responses.RedisURL)
	}
	return embeddedStoreProblems(m, c, cfg, img)
}

// embeddedStoreProblems: without Redis, the embedded store (one file, one
// process) needs a writable, lasting directory and exactly one replica.
func embeddedStoreProblems(m *manifests, c *corev1.Container, cfg serviceConfig, img runtimeImage) (p []string) {
	d := m.Deployment
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || (m.HPA != nil && m.HPA.Spec.MaxReplicas > 1) {
		p = append(p, fmt.Sprintf("no RESPONSES_REDIS_URL, so the embedded store, with replicas %v (HPA: %v): it serves one process only "+
			"(a second fails at start-up), and replicas would not share responses; set RESPONSES_REDIS_URL", deref(d.Spec.Replicas), m.HPA != nil))
	}
	if s := d.Spec.Strategy; s.Type != "Recreate" {
		p = append(p, fmt.Sprintf("embedded store with strategy %q: a surged pod cannot open the file the old one holds; want Recreate", s.Type))
	}
	dir, from := cfg.Responses.DataDir, serviceConfigPath
	if v, ok := effectiveEnv(c, img, "RESPONSES_DATA_DIR"); ok {
		dir, from = v, "RESPONSES_DATA_DIR"
	}
	if !path.IsAbs(dir) {
		return append(p, fmt.Sprintf("the embedded store's directory %q (%s) is relative to the working directory, on the read-only root file system", dir, from))
	}
	var mount *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		mp := strings.TrimSuffix(vm.MountPath, "/")
		if (dir == mp || strings.HasPrefix(dir, mp+"/")) && (mount == nil || len(mp) > len(mount.MountPath)) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		return append(p, fmt.Sprintf("the embedded store's directory %s (%s) is on the read-only root file system: mount a PersistentVolumeClaim there", dir, from))
	}
	if mount.ReadOnly {
		p = append(p, fmt.Sprintf("the embedded store's directory %s is mounted read-only", dir))
	}
	var vol *corev1.Volume
	for i := range d.Spec.Template.Spec.Volumes {
		if d.Spec.Template.Spec.Volumes[i].Name == mount.Name {
			vol = &d.Spec.Template.Spec.Volumes[i]
		}
	}
	switch {
	case vol == nil:
		p = append(p, fmt.Sprintf("volumeMount %s names no volume", mount.Name))
	case vol.PersistentVolumeClaim == nil:
		p = append(p, fmt.Sprintf("the embedded store's directory %s is on volume %s, not a PersistentVolumeClaim: the responses would vanish with the pod", dir, vol.Name))
	case m.PVC == nil || vol.PersistentVolumeClaim.ClaimName != m.PVC.Name:
		p = append(p, fmt.Sprintf("volume %s claims %q, which the render does not define", vol.Name, vol.PersistentVolumeClaim.ClaimName))
	default:
		for _, mode := range m.PVC.Spec.AccessModes {
			if mode != corev1.ReadWriteOnce && mode != corev1.ReadWriteOncePod {
				p = append(p, fmt.Sprintf("PersistentVolumeClaim %s access mode %s: one pod writes it (ReadWriteOnce or ReadWriteOncePod)", m.PVC.Name, mode))
			}
		}
		size, ok := m.PVC.Spec.Resources.Requests[corev1.ResourceStorage]
		// boltstore: the file is larger than what it holds; about twice
		// responses.store_max_bytes is comfortable.
		if want := 2 * cfg.Responses.StoreMaxBytes; !ok || (want > 0 && size.Value() < want) {
			p = append(p, fmt.Sprintf("PersistentVolumeClaim %s requests %s, want at least twice responses.store_max_bytes (%d bytes)", m.PVC.Name, size.String(), want))
		}
	}
	return p
}

// serviceByHost is the Service of the render a host name reaches from the
// service's pods: its name, or name.namespace[.svc[.cluster.local]].
func serviceByHost(m *manifests, host string) *corev1.Service {
	for _, svc := range m.services() {
		names := []string{svc.Name}
		if ns := svc.Namespace; ns != "" {
			names = append(names, svc.Name+"."+ns, svc.Name+"."+ns+".svc", svc.Name+"."+ns+".svc.cluster.local")
		}
		if slices.Contains(names, host) {
			return svc
		}
	}
	return nil
}

// redisURLProblems: a literal Redis URL must name a Service of the render,
// on a port it exposes, whose pods are the Redis of redis.yaml listening
// there.
func redisURLProblems(m *manifests, raw string) (p []string) {
	u, err := url.Parse(raw)
	if err != nil {
		return []string{fmt.Sprintf("RESPONSES_REDIS_URL does not parse: %v", err)}
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		p = append(p, fmt.Sprintf("RESPONSES_REDIS_URL scheme %q, want redis:// (rediss:// with TLS)", u.Scheme))
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			p = append(p, "RESPONSES_REDIS_URL has a password in a literal value: take the URL from a Secret")
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 || n > 15 {
			p = append(p, fmt.Sprintf("RESPONSES_REDIS_URL database %q, want 0..15", db))
		}
	}
	port := u.Port()
	if port == "" {
		port = strconv.Itoa(redisDefaultPort)
	}
	svc := serviceByHost(m, u.Hostname())
	if svc == nil {
		var names []string
		for _, s := range m.services() {
			names = append(names, s.Name)
		}
		return append(p, fmt.Sprintf("RESPONSES_REDIS_URL host %q names no Service of the render (%v)", u.Hostname(), names))
	}
	var sp *corev1.ServicePort
	var ports []string
	for i := range svc.Spec.Ports {
		ports = append(ports, strconv.Itoa(int(svc.Spec.Ports[i].Port)))
		if strconv.Itoa(int(svc.Spec.Ports[i].Port)) == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return append(p, fmt.Sprintf("RESPONSES_REDIS_URL: Service %s exposes no port %s (it has %v)", svc.Name, port, ports))
	}
	rd := m.RedisDeployment
	if rd == nil || len(svc.Spec.Selector) == 0 || !selectorMatches(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, rd.Spec.Template.Labels) {
		return append(p, fmt.Sprintf("RESPONSES_REDIS_URL: Service %s (selector %v) does not select the Redis pods", svc.Name, svc.Spec.Selector))
	}
	if selectorMatches(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, m.Deployment.Spec.Template.Labels) {
		p = append(p, fmt.Sprintf("RESPONSES_REDIS_URL: Service %s also selects the service's own pods", svc.Name))
	}
	rc := findContainer(&rd.Spec.Template.Spec, redisContainerName)
	if rc == nil {
		return append(p, fmt.Sprintf("Deployment %s has no container %s", rd.Name, redisContainerName))
	}
	opts, err := redisOptions(rc)
	if err != nil {
		return append(p, err.Error())
	}
	listen, err := redisPort(opts)
	if err != nil {
		return append(p, err.Error())
	}
	if got := containerPort(rc, sp.TargetPort); got == 0 || got != listen {
		p = append(p, fmt.Sprintf("RESPONSES_REDIS_URL: Service %s port %s targets %s, which is container port %d; Redis listens on %d",
			svc.Name, port, sp.TargetPort.String(), got, listen))
	}
	if u.Scheme == "rediss" {
		p = append(p, "RESPONSES_REDIS_URL is rediss:// but the in-cluster Redis serves no TLS")
	}
	return p
}

// redisOptions parses the command line of redis-server: `--name value...`
// pairs (a config file argument is not supported).
func redisOptions(c *corev1.Container) (map[string][]string, error) {
	argv := append(slices.Clone(c.Command), c.Args...)
	if len(argv) == 0 || argv[0] != "redis-server" {
		return nil, fmt.Errorf("container %s runs %q, want redis-server with --options", c.Name, argv)
	}
	opts := map[string][]string{}
	var cur string
	for _, a := range argv[1:] {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			if _, dup := opts[name]; dup {
				return nil, fmt.Errorf("redis-server option --%s given twice", name)
			}
			cur, opts[name] = name, []string{}
			continue
		}
		if cur == "" {
			return nil, fmt.Errorf("redis-server argument %q before any --option (config files are not supported here)", a)
		}
		opts[cur] = append(opts[cur], a)
	}
	return opts, nil
}

// redisPort is the port redis-server listens on.
func redisPort(opts map[string][]string) (int32, error) {
	v, ok := opts["port"]
	if !ok {
		return redisDefaultPort, nil
	}
	if len(v) != 1 {
		return 0, fmt.Errorf("redis-server --port %q", v)
	}
	n, err := strconv.ParseInt(v[0], 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("redis-server --port %q", v[0])
	}
	return int32(n), nil
}

// parseRedisMemory reads a Redis memory size: bytes, or a number with k,
// kb, m, mb, g or gb (k = 1000, kb = 1024, ...; case-insensitive).
func parseRedisMemory(s string) (int64, error) {
	m := regexp.MustCompile(`^(\d+)([kKmMgG][bB]?|[bB])?$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("not a Redis memory size: %q", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, err
	}
	mult := map[string]int64{"": 1, "b": 1, "k": 1000, "kb": 1 << 10, "m": 1000 * 1000, "mb": 1 << 20, "g": 1000 * 1000 * 1000, "gb": 1 << 30}[strings.ToLower(m[2])]
	return n * mult, nil
}

// responsesTTL is the retention the service applies: RESPONSES_TTL, else
// responses.ttl.
func responsesTTL(m *manifests, cfg serviceConfig) (time.Duration, error) {
	c := findContainer(&m.Deployment.Spec.Template.Spec, appName)
	if c != nil {
		if v, ok := envValue(c, "RESPONSES_TTL"); ok && strings.TrimSpace(v) != "" {
			return parseServiceDuration(v)
		}
	}
	return cfg.Responses.TTL, nil
}

// redisProblems checks the Redis of redis.yaml.
func redisProblems(m *manifests, cfg serviceConfig) (p []string) {
	d := m.RedisDeployment
	pod := d.Spec.Template
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		p = append(p, fmt.Sprintf("Redis replicas %v, want 1: without replication, pods behind one Service would hold different responses", deref(d.Spec.Replicas)))
	}
	if d.Spec.Strategy.Type != "Recreate" {
		p = append(p, fmt.Sprintf("Redis strategy %q, want Recreate (one instance at a time)", d.Spec.Strategy.Type))
	}
	if pod.Labels["app.kubernetes.io/name"] != redisName || !selectorMatches(d.Spec.Selector, pod.Labels) || len(d.Spec.Selector.MatchLabels)+len(d.Spec.Selector.MatchExpressions) == 0 {
		p = append(p, fmt.Sprintf("Redis Deployment selector %v / template labels %v: want app.kubernetes.io/name=%s, selected", d.Spec.Selector, pod.Labels, redisName))
	}
	// The service's selectors and Redis's must not overlap.
	appPods := m.Deployment.Spec.Template.Labels
	if selectorMatches(d.Spec.Selector, appPods) {
		p = append(p, "the Redis Deployment's selector also selects the service's pods")
	}
	for what, sel := range map[string]*metav1.LabelSelector{
		"the service's Deployment selector": m.Deployment.Spec.Selector,
		"the service's Service selector":    {MatchLabels: m.Service.Spec.Selector},
	} {
		if selectorMatches(sel, pod.Labels) {
			p = append(p, fmt.Sprintf("%s %v also selects the Redis pods", what, sel))
		}
	}
	if m.PDB != nil && selectorMatches(m.PDB.Spec.Selector, pod.Labels) {
		p = append(p, "the service's PDB also selects the Redis pods (one replica: it would block every drain)")
	}
	ps := &pod.Spec
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		p = append(p, "Redis pods mount a service-account token (automountServiceAccountToken is not false)")
	}
	if ps.EnableServiceLinks == nil || *ps.EnableServiceLinks {
		p = append(p, "Redis pods get the namespace's Service variables (enableServiceLinks is not false)")
	}
	if len(ps.Containers) != 1 || len(ps.InitContainers) != 0 {
		p = append(p, fmt.Sprintf("Redis pods have %d containers and %d init containers, want one container", len(ps.Containers), len(ps.InitContainers)))
	}
	c := findContainer(ps, redisContainerName)
	if c == nil {
		return append(p, "the Redis Deployment has no container "+redisContainerName)
	}
	if !regexp.MustCompile(redisImagePattern).MatchString(c.Image) {
		p = append(p, fmt.Sprintf("Redis image %q: want the official image pinned to a 7.x.y release (%s)", c.Image, redisImagePattern))
	}
	p = append(p, securityProblems(ps, c, "")...)

	opts, err := redisOptions(c)
	if err != nil {
		return append(p, err.Error())
	}
	listen, err := redisPort(opts)
	if err != nil {
		return append(p, err.Error())
	}
	if got := containerPort(c, intstr.FromString("redis")); got == 0 || got != listen {
		p = append(p, fmt.Sprintf("Redis container port named redis is %d, but redis-server listens on %d", got, listen))
	}
	// No persistence: nothing written, no fork.
	if v, ok := opts["save"]; !ok || !slices.Equal(v, []string{""}) {
		p = append(p, fmt.Sprintf(`redis-server --save %q, want --save "" (no RDB snapshots: no persistence)`, v))
	}
	if v := opts["appendonly"]; !slices.Equal(v, []string{"no"}) {
		p = append(p, fmt.Sprintf("redis-server --appendonly %q, want no (no persistence)", v))
	}
	// Memory: maxmemory within the limit, evicting what expires first.
	limit, hasLimit := c.Resources.Limits[corev1.ResourceMemory]
	request, hasRequest := c.Resources.Requests[corev1.ResourceMemory]
	if !hasLimit || !hasRequest || request.Cmp(limit) != 0 {
		p = append(p, fmt.Sprintf("Redis memory request %s / limit %s: want both, equal (a store is not overcommitted)", request.String(), limit.String()))
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim || req.Cmp(lim) > 0 {
			p = append(p, fmt.Sprintf("Redis %s request %s / limit %s: want both, request <= limit", r, req.String(), lim.String()))
		}
	}
	if v := opts["maxmemory"]; len(v) != 1 {
		p = append(p, "redis-server has no --maxmemory: without it Redis grows until the OOM killer ends it")
	} else if mm, err := parseRedisMemory(v[0]); err != nil {
		p = append(p, err.Error())
	} else if hasLimit {
		lim := limit.Value()
		if float64(mm) > redisMaxMemoryMax*float64(lim) || float64(mm) < redisMaxMemoryMin*float64(lim) {
			p = append(p, fmt.Sprintf("redis-server --maxmemory %s (%d bytes) is not %.0f-%.0f%% of the memory limit %s",
				v[0], mm, 100*redisMaxMemoryMin, 100*redisMaxMemoryMax, limit.String()))
		}
		if want := redisMaxMemoryResponses * cfg.Responses.MaxBytes; mm < want {
			p = append(p, fmt.Sprintf("redis-server --maxmemory %s holds fewer than %d of the largest responses (responses.max_bytes %d)",
				v[0], redisMaxMemoryResponses, cfg.Responses.MaxBytes))
		}
	}
	if v := opts["maxmemory-policy"]; !slices.Equal(v, []string{"volatile-ttl"}) {
		p = append(p, fmt.Sprintf("redis-server --maxmemory-policy %q, want volatile-ttl (the responses that expire first make room; "+
			"under noeviction a full Redis refuses every new response)", v))
	}
	if ttl, err := responsesTTL(m, cfg); err != nil {
		p = append(p, fmt.Sprintf("RESPONSES_TTL: %v", err))
	} else if ttl <= 0 {
		p = append(p, "the service keeps responses without a TTL (RESPONSES_TTL/responses.ttl 0): volatile-ttl can evict none of them, and a full Redis refuses new ones")
	}
	// Volumes: /data, Redis's working directory, an emptyDir.
	data := false
	for _, vm := range c.VolumeMounts {
		for _, v := range ps.Volumes {
			if v.Name == vm.Name && vm.MountPath == "/data" && v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil {
				data = !vm.ReadOnly
			}
		}
	}
	if !data {
		p = append(p, "Redis has no writable emptyDir (with a sizeLimit) at /data, its working directory")
	}
	for _, v := range ps.Volumes {
		if v.Secret != nil || v.HostPath != nil {
			p = append(p, fmt.Sprintf("Redis volume %s mounts a Secret or host path", v.Name))
		}
	}
	// Probes: the named port, or redis-cli on the port redis-server listens on.
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
	}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}} {
		switch {
		case pr.probe == nil:
			p = append(p, fmt.Sprintf("Redis has no %s probe", pr.name))
		case pr.probe.TCPSocket != nil:
			port := pr.probe.TCPSocket.Port
			if port.Type != intstr.String {
				p = append(p, fmt.Sprintf("Redis %s probe port %s is a number: name the container port", pr.name, port.String()))
			} else if got := containerPort(c, port); got != listen {
				p = append(p, fmt.Sprintf("Redis %s probe port %s resolves to %d, want %d", pr.name, port.String(), got, listen))
			}
		case pr.probe.Exec != nil:
			cmd := strings.Join(pr.probe.Exec.Command, " ")
			port := strconv.Itoa(redisDefaultPort)
			if m := regexp.MustCompile(`-p\s+(\d+)`).FindStringSubmatch(cmd); m != nil {
				port = m[1]
			}
			if !strings.Contains(cmd, "redis-cli") || !strings.Contains(cmd, "ping") || port != strconv.Itoa(int(listen)) {
				p = append(p, fmt.Sprintf("Redis %s probe %q: want redis-cli -p %d ping", pr.name, cmd, listen))
			}
			// redis-cli exits 0 on an error reply (NOAUTH, LOADING): the
			// answer must be checked.
			if !strings.Contains(cmd, "PONG") {
				p = append(p, fmt.Sprintf("Redis %s probe %q does not check the answer is PONG (redis-cli exits 0 on errors)", pr.name, cmd))
			}
		default:
			p = append(p, fmt.Sprintf("Redis %s probe is neither tcpSocket nor exec redis-cli", pr.name))
		}
	}
	// The Service.
	svc := m.RedisService
	if svc.Spec.Type != corev1.ServiceTypeClusterIP {
		p = append(p, fmt.Sprintf("Redis Service type %q, want ClusterIP", svc.Spec.Type))
	}
	if len(svc.Spec.Ports) != 1 {
		p = append(p, fmt.Sprintf("Redis Service ports %v, want one", svc.Spec.Ports))
	} else {
		sp := svc.Spec.Ports[0]
		if sp.Name != "redis" || sp.TargetPort.Type != intstr.String || containerPort(c, sp.TargetPort) != listen {
			p = append(p, fmt.Sprintf("Redis Service port %s=%d targetPort %s: want a port named redis targeting the named container port (%d)",
				sp.Name, sp.Port, sp.TargetPort.String(), listen))
		}
	}
	if len(svc.Spec.Selector) == 0 || !selectorMatches(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, pod.Labels) ||
		selectorMatches(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, appPods) {
		p = append(p, fmt.Sprintf("Redis Service selector %v: want the Redis pods %v and not the service's %v", svc.Spec.Selector, pod.Labels, appPods))
	}
	return p
}

func hasPolicyType(np *networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	if len(np.Spec.PolicyTypes) == 0 { // the API server's default
		return t == networkingv1.PolicyTypeIngress || (t == networkingv1.PolicyTypeEgress && len(np.Spec.Egress) > 0)
	}
	return slices.Contains(np.Spec.PolicyTypes, t)
}

// portMatches reports whether a NetworkPolicy port admits TCP to port on
// container c (a named port resolves against c).
func portMatches(pp networkingv1.NetworkPolicyPort, c *corev1.Container, port int32) bool {
	if pp.Protocol != nil && *pp.Protocol != corev1.ProtocolTCP {
		return false
	}
	switch {
	case pp.Port == nil:
		return true
	case pp.Port.Type == intstr.Int && pp.EndPort != nil:
		return pp.Port.IntVal <= port && port <= *pp.EndPort
	case pp.Port.Type == intstr.Int:
		return pp.Port.IntVal == port
	default:
		return containerPort(c, *pp.Port) == port
	}
}

// podPeerMatches: a peer of this namespace's pods (no namespaceSelector,
// no ipBlock) that selects lbls.
func podPeerMatches(peer networkingv1.NetworkPolicyPeer, lbls map[string]string) bool {
	return peer.IPBlock == nil && peer.NamespaceSelector == nil && peer.PodSelector != nil && selectorMatches(peer.PodSelector, lbls)
}

// egressAllows reports whether the policies let pods labelled src open
// TCP connections to port of container dstC in pods labelled dst (same
// namespace).
func egressAllows(policies []*networkingv1.NetworkPolicy, src, dst map[string]string, dstC *corev1.Container, port int32) bool {
	governed := false
	for _, np := range policies {
		if !selectorMatches(&np.Spec.PodSelector, src) || !hasPolicyType(np, networkingv1.PolicyTypeEgress) {
			continue
		}
		governed = true
		for _, r := range np.Spec.Egress {
			to := len(r.To) == 0 || slices.ContainsFunc(r.To, func(peer networkingv1.NetworkPolicyPeer) bool { return podPeerMatches(peer, dst) })
			ports := len(r.Ports) == 0 || slices.ContainsFunc(r.Ports, func(pp networkingv1.NetworkPolicyPort) bool { return portMatches(pp, dstC, port) })
			if to && ports {
				return true
			}
		}
	}
	return !governed
}

// redisNetworkProblems: the service reaches Redis; no other pod, namespace
// or address does, on no other port; Redis reaches nothing.
func redisNetworkProblems(m *manifests) (p []string) {
	appPods := m.Deployment.Spec.Template.Labels
	redisPods := m.RedisDeployment.Spec.Template.Labels
	rc := findContainer(&m.RedisDeployment.Spec.Template.Spec, redisContainerName)
	if rc == nil {
		return []string{"the Redis Deployment has no container " + redisContainerName}
	}
	opts, err := redisOptions(rc)
	if err != nil {
		return []string{err.Error()}
	}
	port, err := redisPort(opts)
	if err != nil {
		return []string{err.Error()}
	}
	policies := m.networkPolicies()
	if !egressAllows(policies, appPods, redisPods, rc, port) {
		p = append(p, fmt.Sprintf("the NetworkPolicies give the service's pods no egress to the Redis pods %v on TCP %d", redisPods, port))
	}
	// Pods that must not reach Redis: anything but the service's pods.
	other := map[string]string{}
	for k, v := range appPods {
		other[k] = v
	}
	other["app.kubernetes.io/name"] = "not-" + appName
	intruders := []map[string]string{other, {}, redisPods, {"app.kubernetes.io/part-of": appName}}

	ingressGoverned, egressGoverned, ingressAllowed := false, false, false
	for _, np := range policies {
		if !selectorMatches(&np.Spec.PodSelector, redisPods) {
			continue
		}
		if hasPolicyType(np, networkingv1.PolicyTypeIngress) {
			ingressGoverned = true
			for i, r := range np.Spec.Ingress {
				where := fmt.Sprintf("NetworkPolicy %s ingress[%d]", np.Name, i)
				if len(r.From) == 0 {
					p = append(p, where+" admits every source to the Redis pods")
				}
				for _, peer := range r.From {
					switch {
					case peer.IPBlock != nil:
						p = append(p, fmt.Sprintf("%s admits the address range %s to the Redis pods", where, peer.IPBlock.CIDR))
					case peer.NamespaceSelector != nil:
						p = append(p, where+" admits pods of other namespaces to the Redis pods")
					case peer.PodSelector == nil || !selectorMatches(peer.PodSelector, appPods):
						p = append(p, fmt.Sprintf("%s admits pods %v that are not the service's to the Redis pods", where, peer.PodSelector))
					default:
						for _, in := range intruders {
							if selectorMatches(peer.PodSelector, in) {
								p = append(p, fmt.Sprintf("%s: selector %v admits other pods than the service's (e.g. %v) to the Redis pods", where, peer.PodSelector, in))
								break
							}
						}
					}
				}
				if len(r.Ports) == 0 {
					p = append(p, where+" admits every port of the Redis pods")
				}
				for _, pp := range r.Ports {
					if pp.Port == nil || !portMatches(pp, rc, port) || (pp.EndPort != nil && *pp.EndPort != pp.Port.IntVal) {
						p = append(p, fmt.Sprintf("%s admits %v, want only TCP %d", where, pp, port))
					}
				}
				from := slices.ContainsFunc(r.From, func(peer networkingv1.NetworkPolicyPeer) bool { return podPeerMatches(peer, appPods) })
				ports := slices.ContainsFunc(r.Ports, func(pp networkingv1.NetworkPolicyPort) bool { return portMatches(pp, rc, port) })
				if from && ports {
					ingressAllowed = true
				}
			}
		}
		if hasPolicyType(np, networkingv1.PolicyTypeEgress) {
			egressGoverned = true
			if len(np.Spec.Egress) > 0 {
				p = append(p, fmt.Sprintf("NetworkPolicy %s allows egress from the Redis pods, which need none", np.Name))
			}
		}
	}
	if !ingressGoverned {
		p = append(p, "no NetworkPolicy restricts ingress to the Redis pods: any pod of the cluster reaches the password-less Redis")
	} else if !ingressAllowed {
		p = append(p, "the NetworkPolicies admit the service's pods to Redis on no rule")
	}
	if !egressGoverned {
		p = append(p, "no NetworkPolicy restricts egress from the Redis pods")
	}
	return p
}

// allStoreProblems is every check of this file that applies to m.
func allStoreProblems(m *manifests, cfg serviceConfig, img runtimeImage) []string {
	p := serviceLinkProblems(m)
	p = append(p, responseStoreProblems(m, cfg, img)...)
	if m.RedisDeployment != nil && m.RedisService != nil {
		p = append(p, redisProblems(m, cfg)...)
		p = append(p, redisNetworkProblems(m)...)
	}
	return p
}

// TestManagedRedisOverlay: the URL comes from the Secret, the in-cluster
// Redis is gone, and the egress rule to it is replaced by one to an
// address range.
func TestManagedRedisOverlay(t *testing.T) {
	m := renderLayout(t, layoutOf(t, managedRedisOverlay))
	c := appContainer(t, m)
	e := envVar(c, "RESPONSES_REDIS_URL")
	if e == nil || e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Fatalf("RESPONSES_REDIS_URL %+v: want it from a Secret, with no literal value left by the patch", e)
	}
	if ref := e.ValueFrom.SecretKeyRef; ref.Name != secretName || ref.Key != "redis-url" || (ref.Optional != nil && *ref.Optional) {
		t.Errorf("RESPONSES_REDIS_URL from secret %s key %s optional %v, want %s key redis-url, required", ref.Name, ref.Key, deref(ref.Optional), secretName)
	}
	redisPods := map[string]string{"app.kubernetes.io/name": redisName}
	ipBlock := false
	for _, r := range m.NetworkPolicy.Spec.Egress {
		for _, peer := range r.To {
			if podPeerMatches(peer, redisPods) {
				t.Errorf("egress rule %+v still targets the in-cluster Redis", r)
			}
			if peer.IPBlock != nil && len(r.Ports) > 0 {
				ipBlock = true
			}
		}
	}
	if !ipBlock {
		t.Error("no egress rule to the managed Redis's address range")
	}
}

// TestSingleReplicaOverlay: no Redis anywhere; the data directory of the
// image is the PVC's mount.
func TestSingleReplicaOverlay(t *testing.T) {
	m := renderLayout(t, layoutOf(t, singleReplicaOverlay))
	c := appContainer(t, m)
	if e := envVar(c, "RESPONSES_REDIS_URL"); e != nil {
		t.Errorf("RESPONSES_REDIS_URL is still set: %+v", e)
	}
	if v, _ := envValue(c, "RESPONSES_DATA_DIR"); v != imageDataDir {
		t.Errorf("RESPONSES_DATA_DIR %q, want the image's %s", v, imageDataDir)
	}
	redisPods := map[string]string{"app.kubernetes.io/name": redisName}
	for _, r := range m.NetworkPolicy.Spec.Egress {
		if slices.ContainsFunc(r.To, func(peer networkingv1.NetworkPolicyPeer) bool { return podPeerMatches(peer, redisPods) }) {
			t.Errorf("egress rule %+v targets a Redis the overlay removed", r)
		}
	}
}

// copyTreeToMemory copies the files under src into dst of fSys.
func copyTreeToMemory(t *testing.T, fSys filesys.FileSystem, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return fSys.WriteFile(filepath.Join(dst, rel), data)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestResponseStoreChecksFail breaks in-memory copies of the manifests one
// way at a time and expects the checks above to say so: what they pass is
// then known to be checked.
func TestResponseStoreChecksFail(t *testing.T) {
	cfg, img := loadServiceConfig(t), loadRuntimeImage(t)
	const (
		base   = kustomizeDir
		single = singleReplicaOverlay
	)
	redisEnv := "            - name: RESPONSES_REDIS_URL\n              value: redis://chatgpt-api-redis:6379/0\n"
	redisPeer := "        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: chatgpt-api\n"
	for _, tc := range []struct {
		name, dir, file, old, new, want string
	}{
		// The defaults: the embedded store on the read-only root, two replicas.
		{"no redis url", base, "kubernetes/deployment.yaml", redisEnv, "", "on the read-only root file system"},
		{"no redis url, replicas", base, "kubernetes/deployment.yaml", redisEnv, "", "serves one process only"},
		{"url host", base, "kubernetes/deployment.yaml", "redis://chatgpt-api-redis:6379/0", "redis://chatgpt-redis:6379/0", `host "chatgpt-redis" names no Service`},
		{"url port", base, "kubernetes/deployment.yaml", "redis://chatgpt-api-redis:6379/0", "redis://chatgpt-api-redis:6380/0", "exposes no port 6380"},
		{"url service", base, "kubernetes/deployment.yaml", "redis://chatgpt-api-redis:6379/0", "redis://chatgpt-api:3111/0", "does not select the Redis pods"},
		{"url password", base, "kubernetes/deployment.yaml", "redis://chatgpt-api-redis:6379/0", "redis://:hunter2@chatgpt-api-redis:6379/0", "password in a literal value"},
		{"url tls", base, "kubernetes/deployment.yaml", "redis://chatgpt-api-redis:6379/0", "rediss://chatgpt-api-redis:6379/0", "serves no TLS"},
		{"url database", base, "kubernetes/deployment.yaml", "redis://chatgpt-api-redis:6379/0", "redis://chatgpt-api-redis:6379/16", `database "16"`},
		{"service links", base, "kubernetes/deployment.yaml", "enableServiceLinks: false", "enableServiceLinks: true", "CHATGPT_API_PORT (Service chatgpt-api)"},
		{"ttl 0", base, "kubernetes/deployment.yaml", "            - name: RESPONSES_REDIS_URL\n",
			"            - name: RESPONSES_TTL\n              value: \"0\"\n            - name: RESPONSES_REDIS_URL\n", "without a TTL"},
		{"redis replicas", base, "kubernetes/redis.yaml", "replicas: 1", "replicas: 2", "Redis replicas 2"},
		{"redis image", base, "kubernetes/redis.yaml", "image: redis:7.4.11-alpine", "image: redis:latest", "pinned to a 7.x.y release"},
		{"redis image 6", base, "kubernetes/redis.yaml", "image: redis:7.4.11-alpine", "image: redis:6.0.20", "pinned to a 7.x.y release"},
		{"redis policy", base, "kubernetes/redis.yaml", "- volatile-ttl", "- noeviction", "want volatile-ttl"},
		{"redis maxmemory over limit", base, "kubernetes/redis.yaml", "- 384mb", "- 1gb", "of the memory limit"},
		{"redis maxmemory missing", base, "kubernetes/redis.yaml", "            - --maxmemory\n            - 384mb\n", "", "no --maxmemory"},
		{"redis maxmemory small", base, "kubernetes/redis.yaml", "memory: 512Mi\n            limits:\n              cpu: 500m\n              memory: 512Mi",
			"memory: 256Mi\n            limits:\n              cpu: 500m\n              memory: 256Mi", "of the memory limit"},
		{"redis save", base, "kubernetes/redis.yaml", "            - --save\n            - \"\"\n", "", "no persistence"},
		{"redis appendonly", base, "kubernetes/redis.yaml", "- --appendonly\n            - \"no\"", "- --appendonly\n            - \"yes\"", "--appendonly"},
		{"redis container port", base, "kubernetes/redis.yaml", "containerPort: 6379", "containerPort: 6380", "listens on 6379"},
		{"redis probe port", base, "kubernetes/redis.yaml", "redis-cli -p 6379 ping", "redis-cli -p 6380 ping", "want redis-cli -p 6379 ping"},
		{"redis probe answer", base, "kubernetes/redis.yaml", "redis-cli -p 6379 ping | grep -qx PONG", "redis-cli -p 6379 ping", "PONG"},
		{"redis probe numbered", base, "kubernetes/redis.yaml", "              port: redis\n", "              port: 6379\n", "name the container port"},
		{"redis root fs", base, "kubernetes/redis.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"redis escalation", base, "kubernetes/redis.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"},
		{"redis root", base, "kubernetes/redis.yaml", "            runAsUser: 999\n            runAsGroup: 1000\n            readOnly", "            runAsUser: 0\n            runAsGroup: 1000\n            readOnly", "runAsUser 0"},
		{"redis token", base, "kubernetes/redis.yaml", "automountServiceAccountToken: false", "automountServiceAccountToken: true", "service-account token"},
		{"redis data", base, "kubernetes/redis.yaml", "mountPath: /data", "mountPath: /var/redis", "at /data"},
		{"redis any pod", base, "kubernetes/redis.yaml", redisPeer, "        - podSelector: {}\n", "other pods than the service's"},
		{"redis other namespaces", base, "kubernetes/redis.yaml", redisPeer, "        - namespaceSelector: {}\n", "other namespaces"},
		{"redis address range", base, "kubernetes/redis.yaml", redisPeer, "        - ipBlock:\n            cidr: 0.0.0.0/0\n", "address range 0.0.0.0/0"},
		{"redis every port", base, "kubernetes/redis.yaml", "      ports:\n        - protocol: TCP\n          port: 6379\n  # No egress", "  # No egress", "every port"},
		{"redis egress", base, "kubernetes/redis.yaml", "  # No egress rules: all egress is denied.\n", "  egress:\n    - {}\n", "allows egress from the Redis pods"},
		{"redis no policy", base, "kubernetes/redis.yaml", "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: chatgpt-api-redis\n",
			"  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: nothing\n", "no NetworkPolicy restricts ingress"},
		{"app policy selects redis", base, "kubernetes/networkpolicy.yaml", "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: chatgpt-api\n",
			"  podSelector: {}\n", "NetworkPolicy chatgpt-api ingress[0]"},
		{"app egress to redis", base, "kubernetes/networkpolicy.yaml", "app.kubernetes.io/name: chatgpt-api-redis", "app.kubernetes.io/name: other", "no egress to the Redis pods"},
		// One replica with the embedded store.
		{"single: strategy", single, "overlays/single-replica/deployment.yaml", "    type: Recreate\n    rollingUpdate: null\n", "", "want Recreate"},
		{"single: replicas", single, "overlays/single-replica/deployment.yaml", "  replicas: 1\n", "  replicas: 2\n", "serves one process only"},
		{"single: mount", single, "overlays/single-replica/deployment.yaml", "          volumeMounts:\n            - name: responses\n              mountPath: /var/lib/chatgpt-api\n", "",
			"on the read-only root file system"},
		{"single: pvc size", single, "overlays/single-replica/pvc.yaml", "storage: 2Gi", "storage: 1Gi", "twice responses.store_max_bytes"},
		{"single: emptyDir", single, "overlays/single-replica/deployment.yaml", "          persistentVolumeClaim:\n            claimName: chatgpt-api-responses\n",
			"          emptyDir: {}\n", "vanish with the pod"},
		{"single: relative dir", single, "overlays/single-replica/deployment.yaml", "              value: /var/lib/chatgpt-api\n", "              value: data\n", "relative to the working directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fSys := filesys.MakeFsInMemory()
			copyTreeToMemory(t, fSys, kustomizeDir, "/d/kubernetes")
			copyTreeToMemory(t, fSys, "overlays", "/d/overlays")
			file := path.Join("/d", tc.file)
			data, err := fSys.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(data), tc.old); n != 1 {
				t.Fatalf("%s: %q occurs %d times, want once", tc.file, tc.old, n)
			}
			if err := fSys.WriteFile(file, []byte(strings.Replace(string(data), tc.old, tc.new, 1))); err != nil {
				t.Fatal(err)
			}
			m, err := render(fSys, path.Join("/d", tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			problems := allStoreProblems(m, cfg, img)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("want a problem containing %q, got %q", tc.want, problems)
			}
		})
	}
	t.Run("unmodified copies pass", func(t *testing.T) {
		fSys := filesys.MakeFsInMemory()
		copyTreeToMemory(t, fSys, kustomizeDir, "/d/kubernetes")
		copyTreeToMemory(t, fSys, "overlays", "/d/overlays")
		for _, l := range kustomizations {
			m, err := render(fSys, path.Join("/d", l.dir))
			if err != nil {
				t.Fatal(err)
			}
			if p := allStoreProblems(m, cfg, img); len(p) > 0 {
				t.Errorf("%s: %q", l.dir, p)
			}
		}
	})
}

func TestRedisHelpers(t *testing.T) {
	for s, want := range map[string]int64{"384mb": 384 << 20, "384MB": 384 << 20, "1gb": 1 << 30, "1g": 1e9, "100": 100, "10k": 10000, "10kb": 10240, "5b": 5} {
		if got, err := parseRedisMemory(s); err != nil || got != want {
			t.Errorf("parseRedisMemory(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "mb", "1.5gb", "10 mb", "1tb"} {
		if _, err := parseRedisMemory(s); err == nil {
			t.Errorf("parseRedisMemory(%q) accepted", s)
		}
	}
	c := &corev1.Container{Name: "redis", Command: []string{"redis-server"}, Args: []string{"--save", "", "--port", "7000", "--maxmemory", "1mb"}}
	opts, err := redisOptions(c)
	if err != nil || !slices.Equal(opts["save"], []string{""}) || !slices.Equal(opts["maxmemory"], []string{"1mb"}) {
		t.Errorf("redisOptions: %v, %v", opts, err)
	}
	if p, err := redisPort(opts); err != nil || p != 7000 {
		t.Errorf("redisPort: %d, %v", p, err)
	}
	for _, bad := range []*corev1.Container{
		{Name: "r", Command: []string{"sh", "-c", "redis-server"}},
		{Name: "r", Command: []string{"redis-server"}, Args: []string{"/etc/redis.conf"}},
		{Name: "r", Command: []string{"redis-server"}, Args: []string{"--port", "1", "--port", "2"}},
	} {
		if _, err := redisOptions(bad); err == nil {
			t.Errorf("redisOptions(%q %q) accepted", bad.Command, bad.Args)
		}
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "chatgpt-api"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 3111, Protocol: corev1.ProtocolTCP}}}}
	got := serviceLinkEnv(svc)
	for _, want := range []string{"CHATGPT_API_SERVICE_HOST", "CHATGPT_API_SERVICE_PORT", "CHATGPT_API_SERVICE_PORT_HTTP", "CHATGPT_API_PORT",
		"CHATGPT_API_PORT_3111_TCP", "CHATGPT_API_PORT_3111_TCP_ADDR"} {
		if !slices.Contains(got, want) {
			t.Errorf("serviceLinkEnv lacks %s: %v", want, got)
		}
	}
	// Named NetworkPolicy ports resolve against the destination container.
	rc := &corev1.Container{Ports: []corev1.ContainerPort{{Name: "redis", ContainerPort: 6379}}}
	named, num, udp := intstr.FromString("redis"), intstr.FromInt32(6379), corev1.ProtocolUDP
	if !portMatches(networkingv1.NetworkPolicyPort{Port: &named}, rc, 6379) || !portMatches(networkingv1.NetworkPolicyPort{Port: &num}, rc, 6379) ||
		portMatches(networkingv1.NetworkPolicyPort{Port: &num, Protocol: &udp}, rc, 6379) || !portMatches(networkingv1.NetworkPolicyPort{}, rc, 6379) {
		t.Error("portMatches")
	}
}
