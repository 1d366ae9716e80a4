"""Redis keys of a cluster and the Lua scripts that place lessons on nodes.

Every decision that two nodes could race on is one Lua script (Redis runs a script alone, start to
finish), so two nodes never both take the same lesson:

* ``PLACE`` — the node that holds the lesson when that node is alive; otherwise the least-loaded
  live node that takes lessons (ties: the asking node, so a lesson starts where its first
  classroom came in), stored as the lesson's holder (sticky until the lesson's room closes or its
  node dies). A node with ``takes_lessons: false`` in its entry (being drained, or a
  signaling-only node) keeps what it holds and relays the rest.
* ``CLAIM`` — a node about to open the lesson's room takes it if nobody alive holds it; answers
  the holder, which is the asking node exactly when the room may be opened there.
* ``RELEASE`` — the holder gives the lesson up (its room closed).

Load = the number of lessons a node holds (a set per node, counted with ``SCARD``); the node
registry entry (``node:<id>``, a JSON object refreshed by the node's heartbeat with a TTL) says
whether a node is alive.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterKeys:
    prefix: str = "classroom:"

    @property
    def nodes(self) -> str:
        """The set of node ids ever registered (members whose entry expired are dropped lazily)."""
        return self.prefix + "nodes"

    def node(self, node_id: str) -> str:
        """A node's registry entry (JSON; expires when its heartbeat stops)."""
        return f"{self.prefix}node:{node_id}"

    def lesson(self, lesson_id: str) -> str:
        """The id of the node that holds the lesson."""
        return f"{self.prefix}lesson:{lesson_id}"

    def lessons_of(self, node_id: str) -> str:
        """The set of lessons a node holds (its load)."""
        return f"{self.prefix}lessons:{node_id}"

    def floor(self, lesson_id: str) -> str:
        """A lesson's floor state (a hash written by its node: signaling/routing/floorstate.py)."""
        return f"{self.prefix}floor:{lesson_id}"

    def inbox(self, node_id: str) -> str:
        """A node's inbox stream: relayed signaling for it, in order."""
        return f"{self.prefix}inbox:{node_id}"


# ARGV[1] prefix, ARGV[2] lesson id, ARGV[3] the asking node
PLACE = """
local p, lesson, me = ARGV[1], ARGV[2], ARGV[3]
local holder = redis.call('GET', p .. 'lesson:' .. lesson)
if holder and redis.call('EXISTS', p .. 'node:' .. holder) == 1 then
  return holder
end
local best, bestload = false, 0
for _, n in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
  local entry = redis.call('GET', p .. 'node:' .. n)
  if entry then
    local ok, info = pcall(cjson.decode, entry)
    if not (ok and type(info) == 'table' and info['takes_lessons'] == false) then
      local load = redis.call('SCARD', p .. 'lessons:' .. n)
      if (not best) or load < bestload or (load == bestload and n == me) then
        best, bestload = n, load
      end
    end
  else
    redis.call('SREM', p .. 'nodes', n)
  end
end
if not best then
  return false
end
if holder then
  redis.call('SREM', p .. 'lessons:' .. holder, lesson)
end
redis.call('SET', p .. 'lesson:' .. lesson, best)
redis.call('SADD', p .. 'lessons:' .. best, lesson)
return best
"""

# ARGV[1] prefix, ARGV[2] lesson id, ARGV[3] the claiming node
CLAIM = """
local p, lesson, me = ARGV[1], ARGV[2], ARGV[3]
local holder = redis.call('GET', p .. 'lesson:' .. lesson)
if holder and holder ~= me and redis.call('EXISTS', p .. 'node:' .. holder) == 1 then
  return holder
end
if holder and holder ~= me then
  redis.call('SREM', p .. 'lessons:' .. holder, lesson)
end
redis.call('SET', p .. 'lesson:' .. lesson, me)
redis.call('SADD', p .. 'lessons:' .. me, lesson)
return me
"""

# ARGV[1] prefix, ARGV[2] lesson id, ARGV[3] the releasing node
RELEASE = """
local p, lesson, me = ARGV[1], ARGV[2], ARGV[3]
redis.call('SREM', p .. 'lessons:' .. me, lesson)
if redis.call('GET', p .. 'lesson:' .. lesson) == me then
  redis.call('DEL', p .. 'lesson:' .. lesson)
  return 1
end
return 0
"""

# ARGV[1] prefix, ARGV[2] node id, ARGV[3] its instance: the entry is removed only if it is still
# that instance's (a node restarted meanwhile keeps its new entry)
FORGET = """
local p, node, instance = ARGV[1], ARGV[2], ARGV[3]
local entry = redis.call('GET', p .. 'node:' .. node)
if not entry then
  return 0
end
local ok, info = pcall(cjson.decode, entry)
if ok and type(info) == 'table' and info['instance'] == instance then
  redis.call('DEL', p .. 'node:' .. node)
  return 1
end
return 0
"""
