// Package deployments holds no code. It is a Go module of its own so that
// the dependencies of its tests (kustomize, the Kubernetes API types, the
// Prometheus Operator types and the PromQL parser) stay out of the
// service's go.mod.
//
// Its tests check what ships in this directory against the service:
//
//   - the Dockerfile's final stage (ENTRYPOINT, EXPOSE, USER, copied files,
//     the response store's directory owned by the USER and a VOLUME);
//   - .dockerignore at the repository root (what the build needs is sent);
//   - the kustomize base in kubernetes/ and the overlays, rendered with the
//     kustomize API and decoded strictly into the Kubernetes API types, then
//     cross-checked (ports, probes, config path, grace period, security
//     context, selectors, service links, the generated ConfigMap);
//   - where /v1/responses keeps its responses: RESPONSES_REDIS_URL names the
//     Redis Service of the render on a port it exposes, the Redis of
//     redis.yaml (pinned image, no persistence, maxmemory, eviction policy,
//     security context, probes) and the NetworkPolicies around it; or, with
//     one replica, the embedded store on a PersistentVolumeClaim;
//   - the metric names in prometheus/rules.yml and grafana/*.json.
//
// Run them with `make k8s-validate` from the repository root, or
// `go test ./...` in this directory.
package deployments
