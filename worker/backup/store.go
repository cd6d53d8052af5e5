package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/iacc/iacc/blob"
)

// ErrNotFound is wrapped when a backup (or one of its objects) does not exist.
var ErrNotFound = errors.New("backup not found")

// Store keeps backup files and manifests by name (flat names such as
// 20261125T020000Z.sql.gz.age).
type Store interface {
	// Put stores everything read from r under name. The object appears
	// only when r has been read to its end without error: a failed or
	// cancelled upload leaves nothing behind.
	Put(ctx context.Context, name string, r io.Reader) (int64, error)
	// Open returns the object's content; a missing object is a wrapped
	// ErrNotFound. The caller closes it.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the names of the stored objects, in no particular order.
	List(ctx context.Context) ([]string, error)
	// Delete removes name; a missing object is not an error.
	Delete(ctx context.Context, name string) error
	// String describes the store for logs (no credentials).
	String() string
}

// DirStore is a Store in a local directory. Writes go to a temporary file
// that is synced and renamed into place (blob.Dir). The directory is
// created by the first write.
type DirStore struct {
	root string
	once sync.Once
	dir  *blob.Dir
	err  error
}

// NewDirStore returns a Store in dir.
func NewDirStore(dir string) (*DirStore, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("backup directory %s: %w", dir, err)
	}
	return &DirStore{root: abs}, nil
}

// Root is the directory's absolute path.
func (s *DirStore) Root() string { return s.root }

// open returns the directory, creating it on first use.
func (s *DirStore) open() (*blob.Dir, error) {
	s.once.Do(func() {
		s.dir, s.err = blob.NewDir(s.root)
		if s.err != nil {
			s.err = fmt.Errorf("backup directory: %w", s.err)
		}
	})
	return s.dir, s.err
}

// existing returns the directory if it exists, without creating it.
func (s *DirStore) existing() (*blob.Dir, error) {
	if _, err := os.Stat(s.root); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return s.open()
}

// Put implements Store.
func (s *DirStore) Put(ctx context.Context, name string, r io.Reader) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	d, err := s.open()
	if err != nil {
		return 0, err
	}
	return d.Put(ctx, name, r)
}

// Open implements Store.
func (s *DirStore) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	d, err := s.existing()
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("%s in %s: %w", name, s, ErrNotFound)
	}
	rc, err := d.Open(ctx, name)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, fmt.Errorf("%s in %s: %w", name, s, ErrNotFound)
	}
	return rc, err
}

// List implements Store. Temporary files of unfinished writes (dot files)
// are not listed.
func (s *DirStore) List(_ context.Context) ([]string, error) {
	entries, err := os.ReadDir(s.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", s, err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Delete implements Store.
func (s *DirStore) Delete(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	d, err := s.existing()
	if err != nil || d == nil {
		return err
	}
	return d.Delete(ctx, name)
}

func (s *DirStore) String() string { return "directory " + s.root }

// checkName keeps names flat: the stores hold no sub-directories.
func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("invalid backup object name %q", name)
	}
	return nil
}
