package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/graph/model"
)

// RedisSessions keeps sessions in Redis, one hash per session, so that every server
// instance sees every session and sessions survive restarts. Each session is one key, so
// it works unchanged on a Redis Cluster.
type RedisSessions struct {
	rdb    redis.UniversalClient
	prefix string
	cfg    SessionConfig
}

// NewRedisSessions returns sessions stored under prefix+"session:".
func NewRedisSessions(rdb redis.UniversalClient, prefix string, cfg SessionConfig) *RedisSessions {
	return &RedisSessions{rdb: rdb, prefix: prefix + "session:", cfg: cfg.withDefaults()}
}

// The fields of a session hash.
const (
	sessionFieldCustomer = "customer"
	sessionFieldCart     = "cart"
	sessionFieldCreated  = "created"
	sessionFieldSeen     = "seen"
	// sessionFieldIdle and sessionFieldEnds are the limits of a bounded session (see
	// CreateBounded), in milliseconds; other sessions have neither.
	sessionFieldIdle = "idle"
	sessionFieldEnds = "ends"
)

// A customer's bounded sessions are also listed under one key per customer, a sorted set of
// session ids scored by their ends, so that EndCustomer finds them all. A session that ended
// by itself stays listed until its ends: ending it again is harmless.
func (s *RedisSessions) customerKey(customerID string) string {
	return s.prefix + "customer:" + customerID
}

// Create starts a session for customerID, or a guest session when customerID is empty.
func (s *RedisSessions) Create(ctx context.Context, customerID string) (model.Session, error) {
	return s.create(ctx, customerID, 0, time.Time{})
}

// CreateBounded starts a session of customerID that expires once idle for idle and at ends
// however much it is used.
func (s *RedisSessions) CreateBounded(ctx context.Context, customerID string, idle time.Duration, ends time.Time) (model.Session, error) {
	if customerID == "" || idle <= 0 || ends.IsZero() {
		return model.Session{}, errors.New("create session: a bounded session needs a customer, an idle timeout and an end")
	}
	return s.create(ctx, customerID, idle, ends)
}

// create starts a session; idle is 0 for one with the idle timeout of its kind and no end.
func (s *RedisSessions) create(ctx context.Context, customerID string, idle time.Duration, ends time.Time) (model.Session, error) {
	id := newSessionID()
	// Millisecond precision, as stored, so that Create and Get agree.
	now := time.UnixMilli(time.Now().UnixMilli())
	key := s.prefix + id
	ms := sessionMillis(now)
	fields := []any{sessionFieldCustomer, customerID, sessionFieldCart, "", sessionFieldCreated, ms, sessionFieldSeen, ms}
	ttl := s.cfg.idle(customerID)
	if idle > 0 {
		fields = append(fields, sessionFieldIdle, idle.Milliseconds(), sessionFieldEnds, sessionMillis(ends))
		ttl = min(idle, ends.Sub(now))
		if err := s.list(ctx, customerID, id, ends, ms); err != nil {
			return model.Session{}, err
		}
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, fields...)
		p.PExpire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return model.Session{}, fmt.Errorf("create session: %w", err)
	}
	return model.Session{ID: id, CustomerID: customerID, CreatedAt: now, LastSeen: now}, nil
}

// list adds a bounded session to its customer's list, and drops the ids whose end is past.
// Before the session exists, so that EndCustomer can never miss one (the list is another key,
// in another hash slot on a Cluster).
func (s *RedisSessions) list(ctx context.Context, customerID, id string, ends time.Time, nowMillis string) error {
	key := s.customerKey(customerID)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, key, redis.Z{Score: float64(ends.UnixMilli()), Member: id})
		p.ZRemRangeByScore(ctx, key, "-inf", nowMillis)
		p.PExpireAt(ctx, key, ends)
		return nil
	})
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Get returns the session id, and records the visit: it sets LastSeen and restarts the
// idle timer. ok is false when the session does not exist or has expired.
func (s *RedisSessions) Get(ctx context.Context, id string) (sess model.Session, ok bool, err error) {
	if !sessionIDValid(id) {
		return model.Session{}, false, nil
	}
	sess, err = s.update(ctx, id)
	switch {
	case errors.Is(err, redis.Nil):
		return model.Session{}, false, nil
	case err != nil:
		return model.Session{}, false, fmt.Errorf("get session: %w", err)
	}
	return sess, true, nil
}

// SetCart records the session's cart. A missing session is NOT_FOUND.
func (s *RedisSessions) SetCart(ctx context.Context, id, cartID string) error {
	return s.set(ctx, "set session cart", id, sessionFieldCart, cartID)
}

// AttachCustomer turns the session into customerID's session, with the customer idle
// timeout, keeping its cart. A missing session is NOT_FOUND.
func (s *RedisSessions) AttachCustomer(ctx context.Context, id, customerID string) error {
	if customerID == "" {
		return errors.New("attach customer: empty customer id")
	}
	return s.set(ctx, "attach customer", id, sessionFieldCustomer, customerID)
}

// Delete ends the session; deleting a missing session is not an error.
func (s *RedisSessions) Delete(ctx context.Context, id string) error {
	if !sessionIDValid(id) {
		return nil
	}
	if err := s.rdb.Del(ctx, s.prefix+id).Err(); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// EndCustomer ends every bounded session of customerID but keep ("" for none) and returns
// the ids it ended with their ends.
func (s *RedisSessions) EndCustomer(ctx context.Context, customerID, keep string) (map[string]time.Time, error) {
	list := s.customerKey(customerID)
	found, err := s.rdb.ZRangeByScoreWithScores(ctx, list, &redis.ZRangeBy{
		Min: "(" + sessionMillis(time.Now()), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("end sessions: %w", err)
	}
	ended := make(map[string]time.Time, len(found))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, z := range found {
			if id, _ := z.Member.(string); id != keep && sessionIDValid(id) {
				ended[id] = time.UnixMilli(int64(z.Score))
				p.Del(ctx, s.prefix+id)
				p.ZRem(ctx, list, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("end sessions: %w", err)
	}
	return ended, nil
}

func (s *RedisSessions) set(ctx context.Context, action, id, field, value string) error {
	if !sessionIDValid(id) {
		return model.NotFound("session")
	}
	_, err := s.update(ctx, id, field, value)
	switch {
	case errors.Is(err, redis.Nil):
		return model.NotFound("session")
	case err != nil:
		return fmt.Errorf("%s: %w", action, err)
	}
	return nil
}

// sessionUpdate sets fields of an existing session, restarts its idle timer and returns all
// its fields; nil when the session does not exist or has reached its end. The idle timeout is
// the session's own (a bounded session) or that of its kind, and never runs past its end.
// A script, so that a session that expires meanwhile is never recreated half empty.
// ARGV: guest idle, customer idle, 'seen', now (ms), further fields and values.
var sessionUpdate = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
local f = redis.call('HMGET', KEYS[1], 'customer', 'idle', 'ends')
local now = tonumber(ARGV[4])
local idle = tonumber(f[2])
if not idle then
  idle = tonumber(ARGV[1])
  if f[1] and f[1] ~= '' then
    idle = tonumber(ARGV[2])
  end
end
local ends = tonumber(f[3])
if ends then
  if ends <= now then
    redis.call('DEL', KEYS[1])
    return false
  end
  idle = math.min(idle, ends - now)
end
redis.call('PEXPIRE', KEYS[1], idle)
return redis.call('HGETALL', KEYS[1])
`)

// update runs sessionUpdate with fieldValues plus the visit time; redis.Nil means the
// session does not exist.
func (s *RedisSessions) update(ctx context.Context, id string, fieldValues ...string) (model.Session, error) {
	args := []any{s.cfg.GuestIdle.Milliseconds(), s.cfg.CustomerIdle.Milliseconds(),
		sessionFieldSeen, sessionMillis(time.Now())}
	for _, v := range fieldValues {
		args = append(args, v)
	}
	var res []string
	var err error
	for deadline := time.Now().Add(failoverWindow); ; {
		res, err = sessionUpdate.Run(ctx, s.rdb, []string{s.prefix + id}, args...).StringSlice()
		if err == nil || !inFailover(err) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return model.Session{}, err
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err != nil {
		return model.Session{}, err
	}
	return sessionFromFields(id, res)
}

// failoverWindow is how long a session's update waits out a Sentinel failover: the old
// master refuses writes (READONLY) from its demotion until the clients learn of the new one.
// A client that missed the Sentinels' announcement learns of it only when its connections
// are renewed, up to 2 s later (see sentinelConnLifetime in the server's wiring), and a
// connection dialed just before the Sentinels switched may still reach the old master: the
// window covers both with room to spare (with 2 s, a run of TestFleetSentinelFailover in
// five had one request of some 4,000-7,500 outlive it). The cache has the database to fall back on;
// sessions have not.
const failoverWindow = 5 * time.Second

// inFailover tells whether err is what a Redis answers while a failover is under way.
func inFailover(err error) bool {
	return redis.IsReadOnlyError(err) || redis.IsLoadingError(err) || redis.IsMasterDownError(err)
}

// sessionFromFields decodes the flat field/value list of HGETALL.
func sessionFromFields(id string, kv []string) (model.Session, error) {
	sess := model.Session{ID: id}
	for i := 0; i+1 < len(kv); i += 2 {
		var err error
		switch v := kv[i+1]; kv[i] {
		case sessionFieldCustomer:
			sess.CustomerID = v
		case sessionFieldCart:
			sess.CartID = v
		case sessionFieldCreated:
			sess.CreatedAt, err = sessionParseMillis(v)
		case sessionFieldSeen:
			sess.LastSeen, err = sessionParseMillis(v)
		}
		if err != nil {
			return model.Session{}, fmt.Errorf("session field %s: %w", kv[i], err)
		}
	}
	return sess, nil
}

func sessionMillis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func sessionParseMillis(s string) (time.Time, error) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}
