package cache

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// ServerEpoch follows which Redis server process a client talks to, by its run id, so that
// a cached value is believed only by the server it was written to. After a restart that
// loaded an old snapshot or append-only file, or a failover to a replica that missed the last
// writes, a value can be older than an invalidation that was already made: served, it would
// make a reader see a product go back in time. Every value RedisBackend writes starts with
// the epoch of the server its writer was talking to, and a value of another epoch reads as
// missing, so it is loaded again from PostgreSQL.
//
// The epoch changes in OnConnect, which the client runs on each new connection before any
// command: every connection to a restarted (or new) server is new, so no command reaches it
// before the epoch changed. On a Redis Cluster the shards' servers differ, and a failover
// of one shard leaves the others' run ids unchanged: there RedisBackend does not tag values
// (see NewRedisBackend), and the cache's TTL bounds what a failed-over shard can serve.
type ServerEpoch struct {
	current atomic.Uint64
}

// OnConnect reads the server's run id on a new connection: set it as the client's OnConnect.
func (e *ServerEpoch) OnConnect(ctx context.Context, cn *redis.Conn) error {
	info, err := cn.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("read the server's run id: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			h := fnv.New64a()
			h.Write([]byte(id))
			e.current.Store(h.Sum64())
			return nil
		}
	}
	return fmt.Errorf("the server's INFO has no run_id")
}

// epochLen is the length of the epoch in front of a tagged value.
const epochLen = 8

// tag returns value with the current epoch in front.
func (e *ServerEpoch) tag(value []byte) []byte {
	out := make([]byte, epochLen, epochLen+len(value))
	binary.BigEndian.PutUint64(out, e.current.Load())
	return append(out, value...)
}

// untag returns the value of a tagged one written in the current epoch, and nil otherwise.
func (e *ServerEpoch) untag(raw []byte) []byte {
	if len(raw) < epochLen || binary.BigEndian.Uint64(raw) != e.current.Load() {
		return nil
	}
	return raw[epochLen:]
}
