package webhook

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/policy"
)

// ConfigStore holds the configuration in force. Each request loads it once,
// so a request never sees half of an old config and half of a new one.
type ConfigStore struct {
	cfg atomic.Pointer[policy.Config]
}

// NewConfigStore starts with cfg (policy.DefaultConfig() when nil).
func NewConfigStore(cfg *policy.Config) *ConfigStore {
	if cfg == nil {
		cfg = policy.DefaultConfig()
	}
	s := &ConfigStore{}
	s.cfg.Store(cfg)
	return s
}

// Load returns the configuration in force.
func (s *ConfigStore) Load() *policy.Config { return s.cfg.Load() }

// Store replaces the configuration in force.
func (s *ConfigStore) Store(cfg *policy.Config) { s.cfg.Store(cfg) }

// configReloader keeps a ConfigStore in step with a PolicyConfig file.
type configReloader struct {
	path    string
	store   *ConfigStore
	metrics *Metrics
	log     logr.Logger
	// last is the content of the file as last read (valid or not), so
	// repeated events for an unchanged file neither reload nor count again.
	last []byte
	// Debounce waits for a burst of file events to settle: editors and
	// kubelet's ConfigMap update write in several steps.
	debounce time.Duration
	// poll re-reads the file periodically in case a watch event is missed
	// (for example when the watched directory itself is replaced).
	poll time.Duration
	// watcher is set up before the first load, so no change is missed
	// between loading and running.
	watcher *fsnotify.Watcher
}

// initial reads and validates the file for the first load at start-up: a bad
// file there is a start-up error, not a reload failure.
func (r *configReloader) initial() error {
	data, err := os.ReadFile(r.path)
	if err != nil {
		return fmt.Errorf("read config %s: %w", r.path, err)
	}
	cfg, err := policy.LoadConfig(data)
	if err != nil {
		return fmt.Errorf("config %s: %w", r.path, err)
	}
	r.last = data
	r.store.Store(cfg)
	return nil
}

// newConfigReloader starts watching path's directory and loads path once
// into store (failing if it is invalid); Run then follows the changes.
func newConfigReloader(path string, store *ConfigStore, metrics *Metrics, log logr.Logger) (*configReloader, error) {
	r := &configReloader{
		path:     path,
		store:    store,
		metrics:  metrics,
		log:      log.WithValues("config", path),
		debounce: 100 * time.Millisecond,
		poll:     10 * time.Second,
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch config directory %s: %w", dir, err)
	}
	r.watcher = w
	if err := r.initial(); err != nil {
		w.Close()
		return nil, err
	}
	r.log.Info("watching configuration file for changes", "directory", dir)
	return r, nil
}

// Run watches the file's directory until ctx ends. The directory, not the
// file, is watched because a mounted ConfigMap is updated by swapping the
// "..data" symlink: the file's own inode never changes.
func (r *configReloader) Run(ctx context.Context) error {
	w := r.watcher
	defer w.Close()

	poll := time.NewTicker(r.poll)
	defer poll.Stop()
	// A stopped timer armed by each event: reload once the burst is over.
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			settle.Reset(r.debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.log.Error(err, "configuration watch error")
		case <-settle.C:
			r.reload()
		case <-poll.C:
			r.reload()
		}
	}
}

// reload reads the file and, if its content changed, validates and installs it.
// An invalid file leaves the configuration in force untouched.
func (r *configReloader) reload() {
	data, err := os.ReadFile(r.path)
	if err != nil {
		if r.last != nil {
			r.last = nil
			r.metrics.observeReload(false)
			r.log.Error(err, "configuration file unreadable; keeping the configuration in force")
		}
		return
	}
	if r.last != nil && bytes.Equal(data, r.last) {
		return
	}
	r.last = data
	cfg, err := policy.LoadConfig(data)
	if err != nil {
		r.metrics.observeReload(false)
		// The policy package's errors carry field paths (one per line).
		r.log.Error(err, "configuration rejected; keeping the configuration in force")
		return
	}
	r.store.Store(cfg)
	r.metrics.observeReload(true)
	r.log.Info("configuration reloaded", "defaultMode", string(cfg.DefaultMode))
}
