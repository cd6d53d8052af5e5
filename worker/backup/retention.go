package backup

import (
	"context"
	"errors"
	"slices"
	"time"
)

// orphanAge is how old a backup file without a manifest must be before
// Prune deletes it: younger ones may belong to a run still uploading.
const orphanAge = 24 * time.Hour

// Prune applies the retention policy: the backups of the KeepDays most
// recent days (UTC) that have a backup are kept, older ones are deleted.
// Counting days rather than backups means an extra backup taken by hand
// does not push a nightly one out early; 31 nightly backups leave 30.
// Backup files without a manifest older than a day (failed runs) are
// deleted too. It returns the deleted ids.
func (s *Service) Prune(ctx context.Context) ([]string, error) {
	names, err := s.cfg.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	manifests := map[string]bool{}
	files := map[string]bool{}
	for _, n := range names {
		if id, isManifest, ok := splitName(n); ok {
			if isManifest {
				manifests[id] = true
			} else {
				files[id] = true
			}
		}
	}
	ids := make([]string, 0, len(manifests))
	for id := range manifests {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	keepDays := map[string]bool{}
	var deleted []string
	var errs []error
	for _, id := range ids {
		day := id[:8] // YYYYMMDD
		if !keepDays[day] && len(keepDays) < s.cfg.KeepDays {
			keepDays[day] = true
		}
		if keepDays[day] {
			continue
		}
		// The manifest goes first: a backup is listed only while both
		// exist, and a file left alone is an orphan, deleted below later.
		if err := s.cfg.Store.Delete(ctx, ManifestName(id)); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.cfg.Store.Delete(ctx, DataName(id)); err != nil {
			errs = append(errs, err)
		}
		delete(files, id)
		deleted = append(deleted, id)
	}
	cutoff := s.now().Add(-orphanAge)
	for id := range files {
		if manifests[id] {
			continue
		}
		if t, err := ParseID(id); err == nil && t.Before(cutoff) {
			if err := s.cfg.Store.Delete(ctx, DataName(id)); err != nil {
				errs = append(errs, err)
				continue
			}
			deleted = append(deleted, id)
		}
	}
	slices.Sort(deleted)
	return deleted, errors.Join(errs...)
}
