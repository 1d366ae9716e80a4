"""Weak links: small pure stages beside the Forwarder, each driven by a caller-supplied clock.

* :mod:`sfu.bwe.estimator` — what one subscriber connection can take (REMB, loss, RTT).
* :mod:`sfu.bwe.selector` — which layer of each track a subscriber gets within that budget.
* :mod:`sfu.bwe.budget` — how much retransmission a subscriber may be sent.

None of them does I/O or reads a clock: every method takes ``now`` (seconds), so tests drive
them with synthetic feedback and a fake clock.
"""
