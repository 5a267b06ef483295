package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisBackend is the Backend of a fleet of servers: Redis through a UniversalClient
// (single node, Sentinel or Cluster), every key under a prefix. Each key is stored as
// prefix{key} and its lock as prefix{key}:lock: the hash tag puts a value and its lock in
// the same Cluster slot, which the fill and unlock scripts need, and spreads keys over the
// slots by the key alone.
//
// Build the client with ContextTimeoutEnabled (and a short DialTimeout) so that the
// Breaker's per-call timeout also bounds socket reads and writes.
type RedisBackend struct {
	client  redis.UniversalClient
	prefix  string
	cluster bool
	epoch   *ServerEpoch // nil: values are stored as they are
}

// redisSubscriptionHealth is how long a subscription waits for a message before it pings
// Redis, and how long it then waits for the pong before it declares the connection dead.
const redisSubscriptionHealth = time.Second

// NewRedisBackend returns a Backend on client that keeps its keys and channels under
// prefix, such as "storefront:". The prefix should not contain '{'. With epoch (the
// client's OnConnect being epoch.OnConnect), values written to one Redis server process are
// not believed when read from another (see ServerEpoch); on a Cluster client it is ignored.
func NewRedisBackend(client redis.UniversalClient, prefix string, epoch *ServerEpoch) *RedisBackend {
	_, cluster := client.(*redis.ClusterClient)
	if cluster {
		epoch = nil
	}
	return &RedisBackend{client: client, prefix: prefix, cluster: cluster, epoch: epoch}
}

// stored is what a value is stored as: with its epoch in front when values are tagged.
func (r *RedisBackend) stored(value []byte) []byte {
	if r.epoch == nil {
		return value
	}
	return r.epoch.tag(value)
}

// value is the value of what was read, nil when it is missing or of another epoch.
func (r *RedisBackend) value(v any) []byte {
	b := redisBytes(v)
	if r.epoch == nil || b == nil {
		return b
	}
	return r.epoch.untag(b)
}

func (r *RedisBackend) valueKey(k string) string { return r.prefix + "{" + k + "}" }

func (r *RedisBackend) lockKey(k string) string { return r.valueKey(k) + ":lock" }

// Get reads the keys with one MGET, or on a Cluster with one MGET per hash slot sent in a
// single pipeline: an MGET whose keys span slots fails with CROSSSLOT.
func (r *RedisBackend) Get(ctx context.Context, keys []string) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = r.valueKey(k)
	}
	if !r.cluster {
		return r.mget(ctx, names)
	}
	return r.mgetBySlot(ctx, names)
}

func (r *RedisBackend) mget(ctx context.Context, names []string) ([][]byte, error) {
	vals, err := r.client.MGet(ctx, names...).Result()
	if err != nil {
		return nil, fmt.Errorf("mget: %w", err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = r.value(v)
	}
	return out, nil
}

func (r *RedisBackend) mgetBySlot(ctx context.Context, names []string) ([][]byte, error) {
	groups := make(map[int][]int) // slot → indexes into names
	for i, n := range names {
		s := redisSlot(n)
		groups[s] = append(groups[s], i)
	}
	if len(groups) == 1 {
		return r.mget(ctx, names)
	}
	pipe := r.client.Pipeline()
	cmds := make([]*redis.SliceCmd, 0, len(groups))
	order := make([][]int, 0, len(groups))
	for _, idx := range groups {
		slotNames := make([]string, len(idx))
		for j, i := range idx {
			slotNames[j] = names[i]
		}
		cmds = append(cmds, pipe.MGet(ctx, slotNames...))
		order = append(order, idx)
	}
	if err := redisExec(ctx, pipe); err != nil {
		return nil, fmt.Errorf("mget: %w", err)
	}
	out := make([][]byte, len(names))
	for g, cmd := range cmds {
		for j, v := range cmd.Val() {
			out[order[g][j]] = r.value(v)
		}
	}
	return out, nil
}

// Set writes the entries with one SET PX each, in one pipeline.
func (r *RedisBackend) Set(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	pipe := r.client.Pipeline()
	for _, e := range entries {
		pipe.Set(ctx, r.valueKey(e.Key), r.stored(e.Value), e.TTL)
	}
	if err := redisExec(ctx, pipe); err != nil {
		return fmt.Errorf("set: %w", err)
	}
	return nil
}

// Delete removes each key's value and lock with one DEL per key (both in one slot), in one
// pipeline.
func (r *RedisBackend) Delete(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	pipe := r.client.Pipeline()
	for _, k := range keys {
		pipe.Del(ctx, r.valueKey(k), r.lockKey(k))
	}
	if err := redisExec(ctx, pipe); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return nil
}

// Lock sends SET lock token NX PX ttl and GET value per key, in one pipeline. A fill sets
// the value and deletes the lock atomically, so a lock taken here with the value already
// present means the key was filled since the caller last read it.
func (r *RedisBackend) Lock(ctx context.Context, keys []string, ttl time.Duration) ([]Claim, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	tokens := lockTokens(len(keys))
	pipe := r.client.Pipeline()
	sets := make([]*redis.BoolCmd, len(keys))
	gets := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		sets[i] = pipe.SetNX(ctx, r.lockKey(k), tokens[i], ttl)
		gets[i] = pipe.Get(ctx, r.valueKey(k))
	}
	if err := redisExec(ctx, pipe); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	claims := make([]Claim, len(keys))
	for i := range keys {
		if sets[i].Val() {
			claims[i].Token = tokens[i]
		}
		if gets[i].Err() == nil {
			claims[i].Value = r.value(gets[i].Val())
		}
	}
	return claims, nil
}

// redisUnlockScript deletes a lock only if it still holds the caller's token.
var redisUnlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0
`)

// redisFillScript stores a value only if the caller still holds the key's lock, and
// releases the lock: a fill loaded before an invalidation deleted the lock is dropped.
var redisFillScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
	return 0
end
redis.call("SET", KEYS[2], ARGV[2], "PX", ARGV[3])
redis.call("DEL", KEYS[1])
return 1
`)

// Unlock runs the compare-and-delete script per key, in one pipeline.
func (r *RedisBackend) Unlock(ctx context.Context, keys, tokens []string) error {
	calls := make([]redisScriptCall, len(keys))
	for i, k := range keys {
		calls[i] = redisScriptCall{keys: []string{r.lockKey(k)}, args: []any{tokens[i]}}
	}
	if _, err := runScripts(ctx, r.client, redisUnlockScript, calls); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	return nil
}

// Fill runs the fill script per entry, in one pipeline.
func (r *RedisBackend) Fill(ctx context.Context, entries []Entry, tokens []string) (int, error) {
	calls := make([]redisScriptCall, len(entries))
	for i, e := range entries {
		ttl := strconv.FormatInt(max(e.TTL.Milliseconds(), 1), 10)
		calls[i] = redisScriptCall{
			keys: []string{r.lockKey(e.Key), r.valueKey(e.Key)},
			args: []any{tokens[i], r.stored(e.Value), ttl},
		}
	}
	cmds, err := runScripts(ctx, r.client, redisFillScript, calls)
	if err != nil {
		return 0, fmt.Errorf("fill: %w", err)
	}
	stored := 0
	for _, c := range cmds {
		if n, _ := c.Int64(); n == 1 {
			stored++
		}
	}
	return stored, nil
}

type redisScriptCall struct {
	keys []string
	args []any
}

// runScripts runs script once per call in one pipeline of EVALSHA. A node that does not
// know the script yet (after a restart, or a new cluster node) answers NOSCRIPT; only those
// calls are sent again as EVAL, which also loads the script there: the others have run and
// must not run twice.
func runScripts(ctx context.Context, client redis.UniversalClient, script *redis.Script, calls []redisScriptCall) ([]*redis.Cmd, error) {
	if len(calls) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.Cmd, len(calls))
	pipe := client.Pipeline()
	for i, c := range calls {
		cmds[i] = script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command below
	var retry []int
	for i, c := range cmds {
		switch err := c.Err(); {
		case err == nil:
		case redis.HasErrorPrefix(err, "NOSCRIPT"):
			retry = append(retry, i)
		default:
			return nil, err
		}
	}
	if len(retry) == 0 {
		return cmds, nil
	}
	pipe = client.Pipeline()
	for _, i := range retry {
		cmds[i] = script.Eval(ctx, pipe, calls[i].keys, calls[i].args...)
	}
	if err := redisExec(ctx, pipe); err != nil {
		return nil, err
	}
	return cmds, nil
}

// Publish publishes payload on the prefixed channel.
func (r *RedisBackend) Publish(ctx context.Context, channel string, payload []byte) error {
	if err := r.client.Publish(ctx, r.prefix+channel, payload).Err(); err != nil {
		return fmt.Errorf("publish %s: %w", channel, err)
	}
	return nil
}

// Subscribe subscribes to the prefixed channels and waits for Redis to confirm each one.
func (r *RedisBackend) Subscribe(ctx context.Context, channels ...string) (Subscription, error) {
	names := make([]string, len(channels))
	for i, c := range channels {
		names[i] = r.prefix + c
	}
	ps := r.client.Subscribe(ctx)
	s := &redisSubscription{ps: ps, prefix: r.prefix}
	if err := ps.Subscribe(ctx, names...); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if err := s.confirm(ctx, len(names)); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return s, nil
}

type redisSubscription struct {
	ps      *redis.PubSub
	prefix  string
	pending []Message // messages that arrived before the last confirmation
}

// confirm reads replies until n subscriptions are confirmed.
func (s *redisSubscription) confirm(ctx context.Context, n int) error {
	timeout := 5 * redisSubscriptionHealth
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	for n > 0 {
		msg, err := s.ps.ReceiveTimeout(ctx, timeout)
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			n--
		case *redis.Message:
			s.pending = append(s.pending, s.message(m))
		}
	}
	return nil
}

// Receive returns the next message. A quiet connection is pinged; a missing pong or any
// read error ends the subscription, so that the caller subscribes again and learns that
// messages may have been lost.
func (s *redisSubscription) Receive(ctx context.Context) (Message, error) {
	if len(s.pending) > 0 {
		m := s.pending[0]
		s.pending = s.pending[1:]
		return m, nil
	}
	pinged := false
	for {
		msg, err := s.ps.ReceiveTimeout(ctx, redisSubscriptionHealth)
		if err != nil {
			if !redisTimeout(err) || pinged {
				return Message{}, fmt.Errorf("receive: %w", err)
			}
			if err := s.ps.Ping(ctx); err != nil {
				return Message{}, fmt.Errorf("ping: %w", err)
			}
			pinged = true
			continue
		}
		pinged = false
		if m, ok := msg.(*redis.Message); ok {
			return s.message(m), nil
		}
	}
}

func (s *redisSubscription) message(m *redis.Message) Message {
	return Message{Channel: strings.TrimPrefix(m.Channel, s.prefix), Payload: []byte(m.Payload)}
}

// Close unsubscribes and closes the subscription's connection.
func (s *redisSubscription) Close() error { return s.ps.Close() }

// redisExec runs a pipeline and returns the first error other than a missing key.
func redisExec(ctx context.Context, pipe redis.Pipeliner) error {
	cmds, err := pipe.Exec(ctx)
	if err == nil {
		return nil
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

func redisTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// redisBytes converts an MGET reply element: a string, or nil for a missing key.
func redisBytes(v any) []byte {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	return []byte(s)
}

// redisSlot returns the Cluster hash slot of key: CRC16 (XMODEM) of its hash tag, or of the
// whole key when it has none, modulo 16384.
func redisSlot(key string) int {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}
