// render: renders a Helm chart offline the way `helm template` does, for the chart tests.
// Go text/template + Sprig (Debian packages) plus the Helm functions Ambit's charts and
// Istio's charts use: include, tpl, required, toYaml, fromYaml, toJson, fromJson, lookup,
// and the objects .Values, .Release, .Chart, .Capabilities, .Template, .Files.
//
//	render -chart DIR [-values FILE]... [-name RELEASE] [-namespace NS]
//
// Semantics kept from Helm: values files deep-merge over the chart's values.yaml (a null
// deletes a key); every template file shares one top-level object, and files run in
// Helm's order (deepest path first, then reverse name order), so a template may reset
// .Values for the others (Istio's zzz_profile.yaml trick); missing keys render empty;
// files named _* only define templates; NOTES.txt is rendered (last, as in Helm) into
// -notes FILE, not output. Output: every file with
// content as `---\n# Source: <chart>/templates/<file>\n<text>`, in name order.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	yaml2 "gopkg.in/yaml.v2"
	"gopkg.in/yaml.v3"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "render: "+format+"\n", args...)
	os.Exit(1)
}

func readYAML(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v map[string]interface{}
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if v == nil {
		v = map[string]interface{}{}
	}
	return v, nil
}

// coalesce merges src over dst like Helm's values files: maps merge, a null deletes.
func coalesce(dst, src map[string]interface{}) map[string]interface{} {
	for k, sv := range src {
		if sv == nil {
			delete(dst, k)
			continue
		}
		sm, sok := sv.(map[string]interface{})
		dm, dok := dst[k].(map[string]interface{})
		if sok && dok {
			dst[k] = coalesce(dm, sm)
		} else {
			dst[k] = sv
		}
	}
	return dst
}

// toYAML is Helm's toYaml: JSON-compatible YAML, keys sorted, no trailing newline.
func toYAML(v interface{}) string {
	data, err := yaml2.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

// helmOrder is Helm's sortTemplates: more path separators first, then reverse name order.
func helmOrder(names []string) []string {
	out := append([]string(nil), names...)
	sort.Slice(out, func(i, j int) bool {
		ci, cj := strings.Count(out[i], "/"), strings.Count(out[j], "/")
		if ci != cj {
			return ci > cj
		}
		return out[i] > out[j]
	})
	return out
}

type files map[string][]byte

func (f files) Get(name string) string { return string(f[name]) }

func main() {
	var valueFiles multiFlag
	chartDir := flag.String("chart", "", "chart directory")
	release := flag.String("name", "release", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	notesFile := flag.String("notes", "", "write the rendered templates/NOTES.txt to this file")
	flag.Var(&valueFiles, "values", "values file (repeatable, later wins)")
	flag.Parse()
	if *chartDir == "" {
		die("-chart is required")
	}
	chart, err := readYAML(filepath.Join(*chartDir, "Chart.yaml"))
	if err != nil {
		die("%v", err)
	}
	chartName, _ := chart["name"].(string)
	if chartName == "" {
		die("%s/Chart.yaml has no name", *chartDir)
	}
	values, err := readYAML(filepath.Join(*chartDir, "values.yaml"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		die("%v", err)
	}
	if values == nil {
		values = map[string]interface{}{}
	}
	for _, vf := range valueFiles {
		user, err := readYAML(vf)
		if err != nil {
			die("%v", err)
		}
		values = coalesce(values, user)
	}

	// Templates and plain files, named like Helm names them.
	tplFiles := map[string]string{}
	chartFiles := files{}
	err = filepath.Walk(*chartDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(*chartDir, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(rel, "templates/") {
			tplFiles[chartName+"/"+rel] = string(data)
		} else {
			chartFiles[rel] = data
		}
		return nil
	})
	if err != nil {
		die("%v", err)
	}

	root := template.New("chart").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	includeDepth := 0
	funcs["include"] = func(name string, data interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 100 {
			return "", fmt.Errorf("include %q: recursion too deep", name)
		}
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, name, data)
		return strings.ReplaceAll(buf.String(), "<no value>", ""), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, data)
		return strings.ReplaceAll(buf.String(), "<no value>", ""), err
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = fromYAML
	funcs["toJson"] = toJSON
	funcs["fromJson"] = fromJSON
	funcs["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil // `helm template`: no cluster
	}
	root.Funcs(funcs)

	names := make([]string, 0, len(tplFiles))
	for n := range tplFiles {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := root.New(n).Parse(tplFiles[n]); err != nil {
			die("parse %v", err)
		}
	}

	top := map[string]interface{}{
		"Values": values,
		"Release": map[string]interface{}{
			"Name": *release, "Namespace": *namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Chart": map[string]interface{}{
			"Name": chart["name"], "Version": chart["version"],
			"AppVersion": chart["appVersion"], "Description": chart["description"],
		},
		"Capabilities": map[string]interface{}{
			"KubeVersion": map[string]interface{}{
				"Version": "v1.30.0", "Major": "1", "Minor": "30", "GitVersion": "v1.30.0",
			},
			"APIVersions": apiVersions{},
			"HelmVersion": map[string]interface{}{"Version": "v3.15.0"},
		},
		"Files": chartFiles,
	}
	out := map[string]string{}
	for _, n := range helmOrder(names) {
		if strings.HasPrefix(filepath.Base(n), "_") {
			continue
		}
		top["Template"] = map[string]interface{}{"Name": n, "BasePath": chartName + "/templates"}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, n, top); err != nil {
			die("%v", err)
		}
		out[n] = strings.ReplaceAll(buf.String(), "<no value>", "")
	}
	notes := chartName + "/templates/NOTES.txt"
	if *notesFile != "" {
		if err := os.WriteFile(*notesFile, []byte(out[notes]), 0o644); err != nil {
			die("%v", err)
		}
	}
	for _, n := range names {
		if n == notes {
			continue // printed by `helm install`, not a manifest
		}
		text := strings.TrimSpace(out[n])
		if text == "" {
			continue
		}
		fmt.Printf("---\n# Source: %s\n%s\n", n, strings.TrimPrefix(text, "---\n"))
	}
}

// apiVersions answers .Capabilities.APIVersions.Has for the kinds a 1.30 cluster with the
// Gateway API serves.
type apiVersions struct{}

func (apiVersions) Has(v string) bool {
	for _, p := range []string{"v1", "apps/v1", "policy/v1", "autoscaling/v2",
		"rbac.authorization.k8s.io/v1", "gateway.networking.k8s.io/v1",
		"networking.istio.io/v1", "security.istio.io/v1"} {
		if v == p || strings.HasPrefix(v, p+"/") {
			return true
		}
	}
	return false
}
