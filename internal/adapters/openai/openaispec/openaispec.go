// Package openaispec validates JSON documents against the schemas published
// in OpenAI's official OpenAPI description (components.schemas).
//
// The OpenAPI document is vendored in spec/openai-openapi.yaml (its source,
// version and licence are in spec/README.md) and embedded, so validation
// needs nothing outside the repository. The OPENAI_OPENAPI_SPEC environment
// variable, when set, names another copy to validate against instead.
//
// The document is OpenAPI 3.1 but still contains a few OpenAPI 3.0 idioms,
// which are translated into JSON Schema draft 2020-12 before compiling:
//
//   - nullable: true  -> the schema also accepts null ("null" is added to
//     type and to enum/const; schemas without a plain type, or using $ref or
//     combinators, are wrapped as anyOf: [{type: null}, <schema>]). The
//     allOf: [X, {nullable: true}] form makes the whole schema nullable.
//   - boolean exclusiveMinimum/exclusiveMaximum -> numeric form.
//   - $recursiveRef: "#" -> $ref to the enclosing component schema.
//   - $ref: "#/components/schemas/X" -> "#/$defs/X"; all component schemas
//     become $defs of one root document.
//
// OpenAPI-only and annotation keywords (x-*, discriminator, example(s),
// deprecated, readOnly, writeOnly, xml, externalDocs, description, title,
// default) are dropped. format is never asserted.
package openaispec

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// envSpecPath names the environment variable that overrides the location of
// the OpenAPI document.
const envSpecPath = "OPENAI_OPENAPI_SPEC"

// embedded is the vendored OpenAPI document.
//
//go:embed spec/openai-openapi.yaml
var embedded []byte

const (
	embeddedName = "spec/openai-openapi.yaml (embedded)"
	resourceURL  = "https://openaispec.invalid/openai-openapi.json"
	refPrefix    = "#/components/schemas/"
)

var (
	loadOnce     sync.Once
	loadErr      error
	loadDuration time.Duration // time spent in the first load (for tests)
	specPath     string        // resolved spec location (for messages)

	mu       sync.Mutex // guards compiler and cache
	compiler *jsonschema.Compiler
	defs     map[string]any
	cache    map[string]compileResult
)

type compileResult struct {
	schema *jsonschema.Schema
	err    error
}

// Validate checks that data (one JSON value) matches components.schemas[schema].
func Validate(schema string, data []byte) error {
	sch, err := compiled(schema)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("openaispec: invalid JSON: %w", err)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("openaispec: does not match %s: %w", schema, err)
	}
	return nil
}

// Must is the test helper: it fails t (Fatalf) when data does not match
// components.schemas[schema] or when the OpenAPI document cannot be loaded.
func Must(t testing.TB, schema string, data []byte) {
	t.Helper()
	if err := Validate(schema, data); err != nil {
		t.Fatalf("openaispec: schema %s: %v\nJSON:\n%s", schema, err, pretty(data))
	}
}

func pretty(data []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, data, "", "  ") == nil {
		return buf.String()
	}
	return string(data)
}

func compiled(name string) (*jsonschema.Schema, error) {
	loadOnce.Do(func() {
		start := time.Now()
		loadErr = load()
		loadDuration = time.Since(start)
	})
	if loadErr != nil {
		return nil, loadErr
	}
	mu.Lock()
	defer mu.Unlock()
	if r, ok := cache[name]; ok {
		return r.schema, r.err
	}
	if _, ok := defs[name]; !ok {
		return nil, fmt.Errorf("openaispec: no schema %q in components.schemas of %s", name, specPath)
	}
	s, err := compiler.Compile(resourceURL + "#/$defs/" + escapePtr(name))
	if err != nil {
		err = fmt.Errorf("openaispec: compiling %s from %s: %w", name, specPath, err)
	}
	cache[name] = compileResult{s, err} // failures are cached too
	return s, err
}

func escapePtr(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func load() error {
	p, raw, err := readSpec()
	if err != nil {
		return err
	}
	specPath = p
	// Only components.schemas is materialised; the rest is parsed but skipped.
	var doc struct {
		Components struct {
			Schemas map[string]any `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("openaispec: parsing %s: %w", p, err)
	}
	if len(doc.Components.Schemas) == 0 {
		return fmt.Errorf("openaispec: %s has no components.schemas", p)
	}
	d := make(map[string]any, len(doc.Components.Schemas))
	for name, s := range doc.Components.Schemas {
		d[name] = convertSchema(s, name)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	root := map[string]any{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"$defs":   d,
	}
	if err := c.AddResource(resourceURL, root); err != nil {
		return fmt.Errorf("openaispec: registering %s: %w", p, err)
	}
	compiler, defs, cache = c, d, map[string]compileResult{}
	return nil
}

// readSpec returns the OpenAPI document: the file OPENAI_OPENAPI_SPEC names
// when it is set, else the embedded copy.
func readSpec() (name string, raw []byte, err error) {
	p := os.Getenv(envSpecPath)
	if p == "" {
		return embeddedName, embedded, nil
	}
	raw, err = os.ReadFile(p)
	if err != nil {
		return p, nil, fmt.Errorf("openaispec: %s=%q: %w", envSpecPath, p, err)
	}
	return p, raw, nil
}

// Keywords whose value is a single subschema.
var schemaKeys = map[string]bool{
	"items": true, "additionalItems": true, "additionalProperties": true,
	"not": true, "if": true, "then": true, "else": true, "contains": true,
	"propertyNames": true, "unevaluatedItems": true, "unevaluatedProperties": true,
	"contentSchema": true,
}

// Keywords whose value is an array of subschemas.
var schemaArrayKeys = map[string]bool{
	"allOf": true, "anyOf": true, "oneOf": true, "prefixItems": true,
}

// Keywords whose value is a map of name -> subschema.
var schemaMapKeys = map[string]bool{
	"properties": true, "patternProperties": true, "$defs": true,
	"definitions": true, "dependentSchemas": true,
}

// OpenAPI-only or annotation-only keywords that are dropped.
var dropKeys = map[string]bool{
	"discriminator": true, "example": true, "examples": true, "deprecated": true,
	"readOnly": true, "writeOnly": true, "xml": true, "externalDocs": true,
	"description": true, "title": true, "default": true, "$comment": true,
	"$recursiveAnchor": true, "nullable": true,
}

// convertSchema translates one OpenAPI schema object (as decoded from YAML)
// into a draft 2020-12 JSON Schema value. comp is the enclosing
// components.schemas name, used for $recursiveRef.
func convertSchema(v any, comp string) any {
	m, ok := asMap(v)
	if !ok {
		return plain(v) // boolean schema or something odd: leave it to the compiler
	}
	out := make(map[string]any, len(m))
	nullable := m["nullable"] == true

	for k, val := range m {
		switch {
		case strings.HasPrefix(k, "x-") || dropKeys[k]:
			continue
		case k == "$ref":
			if s, ok := val.(string); ok && strings.HasPrefix(s, refPrefix) {
				val = "#/$defs/" + strings.TrimPrefix(s, refPrefix)
			}
			out[k] = val
		case k == "$recursiveRef":
			out["$ref"] = "#/$defs/" + escapePtr(comp)
		case schemaKeys[k]:
			if arr, ok := val.([]any); ok && k == "items" { // legacy tuple form
				out["prefixItems"] = convertList(arr, comp)
				continue
			}
			out[k] = convertSchema(val, comp)
		case schemaArrayKeys[k]:
			arr, ok := val.([]any)
			if !ok {
				out[k] = plain(val)
				continue
			}
			if k == "allOf" {
				// OpenAPI 3.0 idiom: allOf: [X, {nullable: true}].
				kept := arr[:0:0]
				for _, e := range arr {
					if isBareNullable(e) {
						nullable = true
						continue
					}
					kept = append(kept, e)
				}
				if len(kept) == 0 {
					continue
				}
				arr = kept
			}
			out[k] = convertList(arr, comp)
		case schemaMapKeys[k]:
			mm, ok := asMap(val)
			if !ok {
				out[k] = plain(val)
				continue
			}
			props := make(map[string]any, len(mm))
			for pk, pv := range mm {
				props[pk] = convertSchema(pv, comp)
			}
			out[k] = props
		case k == "exclusiveMinimum" || k == "exclusiveMaximum":
			b, isBool := val.(bool)
			if !isBool {
				out[k] = plain(val)
				continue
			}
			bound := "minimum"
			if k == "exclusiveMaximum" {
				bound = "maximum"
			}
			if b {
				if n, ok := m[bound]; ok {
					out[k] = plain(n)
				}
			}
		case k == "required":
			out[k] = dedupe(plain(val))
		default:
			out[k] = plain(val)
		}
	}
	// A boolean exclusive bound replaces the inclusive one.
	if b, _ := m["exclusiveMinimum"].(bool); b {
		delete(out, "minimum")
	}
	if b, _ := m["exclusiveMaximum"].(bool); b {
		delete(out, "maximum")
	}
	if nullable {
		return makeNullable(out)
	}
	return out
}

func convertList(arr []any, comp string) []any {
	out := make([]any, len(arr))
	for i, e := range arr {
		out[i] = convertSchema(e, comp)
	}
	return out
}

// isBareNullable reports whether v is {nullable: true} with nothing but
// annotations beside it.
func isBareNullable(v any) bool {
	m, ok := asMap(v)
	if !ok || m["nullable"] != true {
		return false
	}
	for k := range m {
		if !strings.HasPrefix(k, "x-") && !dropKeys[k] {
			return false
		}
	}
	return true
}

// makeNullable lets the already-converted schema s also accept null.
func makeNullable(s map[string]any) map[string]any {
	if len(s) == 0 {
		return s // {} already accepts null
	}
	composite := false
	for _, k := range []string{"$ref", "allOf", "anyOf", "oneOf", "not", "if", "$dynamicRef"} {
		if _, ok := s[k]; ok {
			composite = true
			break
		}
	}
	_, hasType := s["type"]
	if !composite && hasType {
		switch t := s["type"].(type) {
		case string:
			if t != "null" {
				s["type"] = []any{t, "null"}
			}
		case []any:
			if !containsValue(t, "null") {
				s["type"] = append(t, "null")
			}
		}
		if e, ok := s["enum"].([]any); ok && !containsValue(e, nil) {
			s["enum"] = append(e, nil)
		}
		if c, ok := s["const"]; ok && c != nil {
			delete(s, "const")
			s["enum"] = []any{c, nil}
		}
		return s
	}
	return map[string]any{"anyOf": []any{map[string]any{"type": "null"}, s}}
}

// dedupe removes repeated names from a required list (the document has a
// few, and 2020-12 requires uniqueItems there).
func dedupe(v any) any {
	arr, ok := v.([]any)
	if !ok {
		return v
	}
	seen := make(map[any]bool, len(arr))
	out := arr[:0:0]
	for _, e := range arr {
		if s, ok := e.(string); ok {
			if seen[s] {
				continue
			}
			seen[s] = true
		}
		out = append(out, e)
	}
	return out
}

func containsValue(arr []any, v any) bool {
	for _, e := range arr {
		if e == v {
			return true
		}
	}
	return false
}

func asMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, val := range m {
			out[fmt.Sprint(k)] = val
		}
		return out, true
	}
	return nil, false
}

// plain converts a non-schema YAML value (enum entries, required lists, ...)
// into JSON-compatible Go values.
func plain(v any) any {
	switch x := v.(type) {
	case map[string]any, map[any]any:
		m, _ := asMap(x)
		out := make(map[string]any, len(m))
		for k, val := range m {
			out[k] = plain(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}
