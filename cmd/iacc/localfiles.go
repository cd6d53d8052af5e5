package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/iacc/iacc/blob"
)

// readOrCreate returns what path holds, first creating it with generate's
// content if it does not exist (createOnce: processes that start together
// agree on one file, the first one's).
func readOrCreate(path string, generate func() ([]byte, error)) ([]byte, error) {
	b, err := os.ReadFile(path)
	if !errors.Is(err, os.ErrNotExist) {
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		return b, nil
	}
	content, err := generate()
	if err != nil {
		return nil, err
	}
	return createOnce(path, content)
}

// createOnce stores content at path unless a file is there already, and
// returns what path holds afterwards: content, or what another process
// stored first. It is blob.Dir.PutNew on path's directory (made 0700 if
// missing): the file appears whole and durable, and processes that start
// together on a fresh checkout agree on one file, so none keeps a secret
// that another one's write replaced.
func createOnce(path string, content []byte) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	d, err := blob.NewDir(dir)
	if err != nil {
		return nil, err
	}
	created, err := d.PutNew(context.Background(), filepath.Base(path), bytes.NewReader(content))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if created {
		return content, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
