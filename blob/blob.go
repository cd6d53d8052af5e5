package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrNotFound is returned (wrapped) for a key that holds nothing.
var ErrNotFound = errors.New("blob not found")

// Store keeps files by key.
type Store interface {
	// Put stores everything read from r under key, replacing what was there.
	Put(ctx context.Context, key string, r io.Reader) (size int64, err error)
	// Open returns the file under key; the caller closes it.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Dir is a Store in a local directory.
type Dir struct {
	root string
	// syncDir makes a directory's entries durable. It is fsyncDir; a test
	// replaces it to see which directories Put syncs, and when.
	syncDir func(dir string) error
}

// NewDir returns a Store rooted at dir, creating it if needed.
func NewDir(dir string) (*Dir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("create blob dir %s: %w", abs, err)
	}
	return &Dir{root: abs, syncDir: fsyncDir}, nil
}

// Root is the directory's absolute path.
func (d *Dir) Root() string { return d.root }

func (d *Dir) path(key string) (string, error) {
	clean := path.Clean("/" + key)[1:]
	if key == "" || clean != key || strings.Contains(key, "\\") || strings.HasPrefix(key, ".") {
		return "", fmt.Errorf("invalid blob key %q", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(clean)), nil
}

// Put implements Store: it writes to a temporary file in the same directory,
// syncs it, renames it over the key and syncs the directory. Put returns only
// once the blob would survive a crash or a power cut, name included: its
// callers then record it elsewhere (a documents row) or delete its source
// (the audit rows an archive holds). The directories it creates are synced
// into their parents the same way.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	return d.put(ctx, key, r, false)
}

// PutNew stores everything read from r under key unless key holds a file
// already, and reports whether it stored it. It writes as Put does but
// hard-links the temporary file to the key instead of renaming it over it:
// of writers racing for a new key, one wins and the others leave its file
// as it is. Durable as Put.
func (d *Dir) PutNew(ctx context.Context, key string, r io.Reader) (bool, error) {
	_, err := d.put(ctx, key, r, true)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	return err == nil, err
}

// put writes r to a synced temporary file in key's directory, gives it the
// key's name (os.Rename, or os.Link when link is set) and syncs the
// directory.
func (d *Dir) put(ctx context.Context, key string, r io.Reader, link bool) (int64, error) {
	p, err := d.path(key)
	if err != nil {
		return 0, err
	}
	dir := filepath.Dir(p)
	if err := d.makeDir(dir); err != nil {
		return 0, fmt.Errorf("create blob dir for %s: %w", key, err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("create temp file for %s: %w", key, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed { // after a rename the name is gone already: no system call for nothing
			_ = os.Remove(tmp) // after a failure, or a link: drop the temporary name
		}
	}()
	n, err := io.Copy(f, readerWithContext{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("write blob %s: %w", key, err)
	}
	place := os.Rename
	if link {
		place = os.Link
	}
	if err := place(tmp, p); err != nil {
		return 0, fmt.Errorf("store blob %s: %w", key, err)
	}
	renamed = !link
	if err := d.syncDir(dir); err != nil {
		return 0, fmt.Errorf("sync blob dir for %s: %w", key, err)
	}
	return n, nil
}

// makeDir creates dir and its missing parents, syncing each new directory's
// parent. With keys grouped by directory (pdf.BlobKey), dir exists almost
// always: that is a single stat.
func (d *Dir) makeDir(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if dir == d.root || parent == dir {
		// The root itself was removed: make it again with its parents.
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
	} else {
		if err := d.makeDir(parent); err != nil {
			return err
		}
		// Another Put may have made it meanwhile.
		if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return d.syncDir(parent)
}

// fsyncDir syncs a directory, so that the entries created or renamed in it
// are on disk. A file system that cannot sync directories (EINVAL) keeps
// them as well as it can: that is not an error.
func fsyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}

// Open implements Store.
func (d *Dir) Open(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", key, err)
	}
	return f, nil
}

// Delete implements Store.
func (d *Dir) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

type readerWithContext struct {
	ctx context.Context
	r   io.Reader
}

func (r readerWithContext) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
