package socks5dmain

import (
	"fmt"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/core"
	"github.com/socks5d/socks5d/store/etcdstore"
)

// openStore opens the store the configuration asks for (store.kind): the
// state file in data_dir, or etcd shared by a fleet. closeStore releases
// it at the end; where names it in log lines. With check (-t) it writes
// nothing.
func openStore(cfg *core.Config, logger hclog.Logger, check bool) (store core.Store, where string, closeStore func(), err error) {
	statePath := filepath.Join(cfg.DataDir, "state.json")
	if cfg.Store.Kind != "etcd" {
		return core.NewFileStore(statePath), statePath, func() {}, nil
	}
	es, err := etcdstore.Open(cfg.Store, cfg.DataDir, logger.Named("store"))
	if err != nil {
		return nil, "", nil, err
	}
	if check {
		es.CheckOnly()
	}
	where = fmt.Sprintf("etcd %v prefix %s", cfg.Store.Endpoints, cfg.Store.Prefix)
	return es, where, func() { es.Close() }, nil
}

// shareBans hands the stages the fleet's ban board when the store is one.
func shareBans(rt *core.Runtime, store core.Store) error {
	if es, ok := store.(*etcdstore.Store); ok {
		return rt.SetBanBoard(es)
	}
	return nil
}
