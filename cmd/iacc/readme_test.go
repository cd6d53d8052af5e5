package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every IACC_* variable the configuration reads is in the README's table,
// and every command line the runbooks give is a real command.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.go")
	names := map[string]bool{}
	re := regexp.MustCompile(`"(IACC_[A-Z0-9_]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			if !strings.HasPrefix(m[1], "IACC_SCHEDULE_") { // documented as IACC_SCHEDULE_<JOB>
				names[m[1]] = true
			}
		}
	}
	if len(names) < 40 {
		t.Fatalf("found only %d variables; is the scan broken?", len(names))
	}
	for n := range names {
		if !strings.Contains(string(readme), "`"+n+"`") {
			t.Errorf("README.md does not document %s", n)
		}
	}
}

func TestRunbookCommandsExist(t *testing.T) {
	docs, _ := filepath.Glob("../../docs/runbooks/*.md")
	if len(docs) < 5 {
		t.Fatalf("only %d runbooks found", len(docs))
	}
	re := regexp.MustCompile(`(?m)^\s*(?:\$ )?iacc ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)*)`)
	seen := 0
	for _, f := range docs {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(body), -1) {
			words := strings.Fields(m[1])
			root := newRootCmd(mapEnv(nil), &strings.Builder{}, &strings.Builder{})
			cmd, rest, err := root.Find(words)
			if err != nil || cmd == root {
				t.Errorf("%s: `iacc %s` is not a command", filepath.Base(f), m[1])
				continue
			}
			// Words after the command must be its arguments, not an unknown subcommand.
			if len(cmd.Commands()) > 0 && len(rest) > 0 {
				t.Errorf("%s: `iacc %s`: %q is not a subcommand of %q", filepath.Base(f), m[1], rest[0], cmd.CommandPath())
			}
			var out strings.Builder
			r := newRootCmd(mapEnv(nil), &out, &out)
			r.SetArgs(append(strings.Fields(strings.TrimPrefix(cmd.CommandPath(), "iacc ")), "--help"))
			if err := r.Execute(); err != nil || !strings.Contains(out.String(), "Usage:") {
				t.Errorf("%s: iacc %s --help: %v", filepath.Base(f), m[1], err)
			}
			seen++
		}
	}
	if seen < 10 {
		t.Errorf("only %d iacc command lines found in the runbooks", seen)
	}
}
