"""Where lessons live and how a classroom's signals reach them: ``Router`` (the interface,
``base.py``), ``LocalRouter`` (one process, in memory, ``local.py``) and ``RedisRouter``
(several nodes coordinated through Redis, ``redis.py``)."""
