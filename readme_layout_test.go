package main

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestReadmeMapsThePackages checks the README's map of packages against the tree: the same
// packages, each importing exactly the packages of this module it lists.
func TestReadmeMapsThePackages(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := readmePackageMap(t, string(readme))
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	got := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := modulePackage(fields[0])
		got[pkg] = []string{}
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, modulePath+"/") {
				got[pkg] = append(got[pkg], modulePackage(imp))
			}
		}
		slices.Sort(got[pkg])
	}
	for pkg, imports := range got {
		listed, ok := want[pkg]
		switch {
		case !ok:
			t.Errorf("README's package map lacks %s (imports %v)", pkg, imports)
		case !slices.Equal(listed, imports):
			t.Errorf("README's package map: %s imports %v; the tree says %v", pkg, listed, imports)
		}
	}
	for pkg := range want {
		if _, ok := got[pkg]; !ok {
			t.Errorf("README's package map lists %s, which is not in the tree", pkg)
		}
	}
}

const modulePath = "github.com/homegoods/storefront"

// modulePackage names a package of the module as the map does: its path in the module, the
// root "package main".
func modulePackage(path string) string {
	if path == modulePath {
		return "package main"
	}
	return strings.TrimPrefix(path, modulePath+"/")
}

// readmePackageMap reads the block after the "package map" comment: "pkg → a, b" lines,
// continued on indented lines; "(...)" for a package importing nothing of the module.
func readmePackageMap(t *testing.T, readme string) map[string][]string {
	t.Helper()
	_, block, ok := strings.Cut(readme, "<!-- package map: checked by TestReadmeMapsThePackages -->\n```text\n")
	if !ok {
		t.Fatal("README.md has no package map")
	}
	block, _, _ = strings.Cut(block, "```")
	out := map[string][]string{}
	var last string
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		rest := line
		if !strings.HasPrefix(line, " ") {
			pkg, imports, ok := strings.Cut(line, "→")
			if !ok {
				t.Fatalf("package map line %q has no →", line)
			}
			last, rest = strings.TrimSpace(pkg), imports
			out[last] = []string{}
		}
		if strings.HasPrefix(strings.TrimSpace(rest), "(") {
			continue
		}
		for _, imp := range strings.Split(rest, ",") {
			if imp = strings.TrimSpace(imp); imp != "" {
				out[last] = append(out[last], imp)
			}
		}
		slices.Sort(out[last])
	}
	return out
}
