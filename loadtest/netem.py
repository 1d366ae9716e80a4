"""An impaired network link for real-browser benchmarks and tests: a rural school's line, emulated.

This kernel has no ``netem`` (nor fq/sfq), so the link is built from what it has
(``/work/shared/FIELD_NOTES.md``, "Emulating a rural school's link"):

- **a network namespace + a veth pair**: the host side ``10.88.X.1/24`` in the root namespace,
  the classroom side ``10.88.X.2/24`` inside the namespace ``<prefix>-X-cls``, no route out. A
  program run with :meth:`Link.exec_argv` (``ip netns exec …``) can reach only ``10.88.X.1``.
- **rate cap**: ``tc qdisc replace dev DEV root tbf rate R burst 15000 latency 200ms``; on the
  host-side device for the downlink (toward the classroom), on the classroom-side device (inside
  the namespace) for the uplink. tbf drops are invisible to the sender, like a real bottleneck.
- **random loss**: an nftables ``netdev`` ingress chain with ``numgen random mod 100 < P drop``
  at the FAR END of each direction: on the classroom's interface (inside its namespace) for
  downlink loss, on the host-side interface for uplink loss. Dropping in the sender's own output
  path would make its ``send()`` fail, which real path loss never does.
- **delay and jitter** (``LinkSpec(relay=True)``): a third namespace ``<prefix>-X-mid`` sits in
  the middle of the link; a user-space L2 relay there (:mod:`loadtest.l2relay`, its own process)
  holds every frame ``delay`` ms + U(0, ``jitter``) ms in each direction.

Conditions change mid-run with :meth:`Link.set` (``rate=``, ``loss=``, ``delay=``, …). A link is
always torn down: context manager, an ``atexit`` hook, and ``python -m loadtest.netem --cleanup``
removes whatever a killed run left behind (namespaces, devices and nftables tables whose names
start with the prefix). Needs root, ``ip`` (iproute2), ``tc``, ``nft`` (nftables) and ``ethtool``.

The command builders (``*_argv``, ``*_script``) are pure and unit-tested
(``tests/unit/test_netem.py``); :class:`Link` runs them.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

log = logging.getLogger("loadtest.netem")

PREFIX: Final = "wl"
TBF_BURST_BYTES: Final = 15000
TBF_LATENCY_MS: Final = 200


class NetemError(RuntimeError):
    """A command that builds or changes the link failed."""


class _Keep:
    """Sentinel: leave this setting as it is (``None`` means "no impairment")."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()


@dataclass(frozen=True)
class LinkSpec:
    """Names and addresses of one link. ``index`` is X in ``10.88.X.0/24`` (0–255)."""

    index: int
    prefix: str = PREFIX
    relay: bool = False  # a middle namespace with the delay/jitter relay

    def __post_init__(self) -> None:
        if not 0 <= self.index <= 255:
            raise ValueError(f"link index {self.index} is not in 0..255")
        if not self.prefix.isalnum() or not self.prefix.islower() or len(self.prefix) > 4:
            raise ValueError(f"prefix {self.prefix!r}: 1-4 lowercase letters/digits")

    # namespaces
    @property
    def netns(self) -> str:
        """The impaired classroom's namespace."""
        return f"{self.prefix}-{self.index}-cls"

    @property
    def mid_netns(self) -> str:
        return f"{self.prefix}-{self.index}-mid"

    # devices (at most 15 characters)
    @property
    def host_dev(self) -> str:
        return f"{self.prefix}{self.index}h"

    @property
    def cls_dev(self) -> str:
        return f"{self.prefix}{self.index}c"

    @property
    def mid_host_dev(self) -> str:
        """The middle namespace's end of the host-side pair (relay only)."""
        return f"{self.prefix}{self.index}mh"

    @property
    def mid_cls_dev(self) -> str:
        """The middle namespace's end of the classroom-side pair (relay only)."""
        return f"{self.prefix}{self.index}mc"

    # addresses
    @property
    def host_ip(self) -> str:
        return f"10.88.{self.index}.1"

    @property
    def cls_ip(self) -> str:
        return f"10.88.{self.index}.2"

    # nftables tables (netdev family, one per impaired device)
    @property
    def down_loss_table(self) -> str:
        return f"{self.prefix}{self.index}_down_loss"

    @property
    def up_loss_table(self) -> str:
        return f"{self.prefix}{self.index}_up_loss"

    @property
    def meter_table(self) -> str:
        return f"{self.prefix}{self.index}_meter"


@dataclass(frozen=True)
class Conditions:
    """What the link does now. Rates in kbit/s, loss in percent, delay/jitter in ms one way;
    ``None`` = not impaired in that respect."""

    down_rate_kbit: float | None = None
    up_rate_kbit: float | None = None
    down_loss_pct: float | None = None
    up_loss_pct: float | None = None
    delay_ms: float | None = None
    jitter_ms: float | None = None

    def describe(self) -> str:
        parts = []
        if self.down_rate_kbit is not None:
            parts.append(f"down {self.down_rate_kbit / 1000:.2f} Mbit/s")
        if self.up_rate_kbit is not None:
            parts.append(f"up {self.up_rate_kbit / 1000:.2f} Mbit/s")
        if self.down_loss_pct:
            parts.append(f"down loss {self.down_loss_pct:g}%")
        if self.up_loss_pct:
            parts.append(f"up loss {self.up_loss_pct:g}%")
        if self.delay_ms or self.jitter_ms:
            parts.append(f"delay {self.delay_ms or 0:g}+U(0,{self.jitter_ms or 0:g}) ms each way")
        return ", ".join(parts) or "unimpaired"


# ---------------------------------------------------------------------------------------------
# pure command builders


def in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside ``netns`` (``None`` = the root namespace)."""
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def setup_argvs(spec: LinkSpec) -> list[list[str]]:
    """Commands that build the link (namespaces, veths, addresses, offloads off, links up)."""
    s = spec
    cmds: list[list[str]] = [["ip", "netns", "add", s.netns]]
    if s.relay:
        cmds += [
            ["ip", "netns", "add", s.mid_netns],
            ["ip", "link", "add", s.host_dev, "type", "veth", "peer", "name", s.mid_host_dev,
             "netns", s.mid_netns],
            ["ip", "-n", s.mid_netns, "link", "add", s.mid_cls_dev, "type", "veth", "peer",
             "name", s.cls_dev, "netns", s.netns],
        ]
    else:
        cmds.append(["ip", "link", "add", s.host_dev, "type", "veth", "peer", "name", s.cls_dev,
                     "netns", s.netns])
    cmds += [
        ["ip", "addr", "add", f"{s.host_ip}/24", "dev", s.host_dev],
        ["ip", "-n", s.netns, "addr", "add", f"{s.cls_ip}/24", "dev", s.cls_dev],
    ]
    # No IPv6 chatter (router solicitations, DAD) on the link; the stack only sees IPv4.
    for ns, dev in _devices(s):
        cmds.append(in_netns(ns, ["sysctl", "-q", "-w", f"net.ipv6.conf.{dev}.disable_ipv6=1"]))
    # Checksum and segmentation offloads off: a relayed frame must be a finished frame, and tbf
    # should meter wire-sized packets.
    for ns, dev in _devices(s):
        cmds.append(in_netns(ns, ["ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off",
                                  "gro", "off"]))
    if s.relay:
        for dev in (s.mid_host_dev, s.mid_cls_dev):
            cmds.append(["ip", "-n", s.mid_netns, "link", "set", dev, "promisc", "on", "up"])
    cmds += [
        ["ip", "link", "set", s.host_dev, "up"],
        ["ip", "-n", s.netns, "link", "set", "lo", "up"],
        ["ip", "-n", s.netns, "link", "set", s.cls_dev, "up"],
    ]
    return cmds


def _devices(s: LinkSpec) -> list[tuple[str | None, str]]:
    devs: list[tuple[str | None, str]] = [(None, s.host_dev), (s.netns, s.cls_dev)]
    if s.relay:
        devs += [(s.mid_netns, s.mid_host_dev), (s.mid_netns, s.mid_cls_dev)]
    return devs


def teardown_argvs(spec: LinkSpec) -> list[list[str]]:
    """Commands that remove the link (each may fail harmlessly if already gone). Deleting a
    namespace deletes its veth ends and so their peers."""
    cmds = [
        ["nft", "delete", "table", "netdev", spec.up_loss_table],
        ["nft", "delete", "table", "inet", spec.meter_table],
        ["ip", "netns", "del", spec.netns],
    ]
    if spec.relay:
        cmds.append(["ip", "netns", "del", spec.mid_netns])
    cmds.append(["ip", "link", "del", spec.host_dev])
    return cmds


def tbf_argv(dev: str, rate_kbit: float | None, netns: str | None = None) -> list[str]:
    """Set (``replace``) or remove (``rate_kbit=None``) a tbf rate cap on ``dev``'s egress."""
    if rate_kbit is None:
        return in_netns(netns, ["tc", "qdisc", "del", "dev", dev, "root"])
    if rate_kbit <= 0:
        raise ValueError(f"rate {rate_kbit} kbit/s must be > 0")
    return in_netns(netns, [
        "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", f"{round(rate_kbit)}kbit",
        "burst", str(TBF_BURST_BYTES), "latency", f"{TBF_LATENCY_MS}ms",
    ])


def loss_rule(percent: float) -> str:
    """The nftables drop rule for ``percent`` random loss of IPv4 packets (ARP is spared)."""
    if not 0 < percent < 100:
        raise ValueError(f"loss {percent}% must be in (0, 100)")
    if float(percent).is_integer():
        return f"meta protocol ip numgen random mod 100 < {int(percent)} counter drop"
    return f"meta protocol ip numgen random mod 10000 < {round(percent * 100)} counter drop"


def loss_script(table: str, device: str, percent: float | None) -> str:
    """An atomic ``nft -f`` script that (re)creates ``table`` with an ingress loss chain on
    ``device``, or just removes it when ``percent`` is ``None``/0. The ``table … {}`` +
    ``delete table`` pair makes the delete succeed whether or not the table existed."""
    lines = [f"table netdev {table} {{}}", f"delete table netdev {table}"]
    if percent:
        lines += [
            f"table netdev {table} {{",
            "  chain ingress {",
            f'    type filter hook ingress device "{device}" priority -500; policy accept;',
            f"    {loss_rule(percent)}",
            "  }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def meter_script(table: str, cls_ip: str) -> str:
    """Counters of what the host offers toward the classroom (output hook: before any qdisc, so
    this is what the SFU sends, not what the cap lets through)."""
    return "\n".join([
        f"table inet {table} {{}}",
        f"delete table inet {table}",
        f"table inet {table} {{",
        "  chain out {",
        "    type filter hook output priority 0; policy accept;",
        f"    ip daddr {cls_ip} counter",
        "  }",
        "}",
    ]) + "\n"


def relay_argv(spec: LinkSpec, delay_ms: float, jitter_ms: float,
               python: str = sys.executable) -> list[str]:
    """The delay relay process, inside the middle namespace."""
    return in_netns(spec.mid_netns, [
        python, "-m", "loadtest.l2relay", "--a", spec.mid_host_dev, "--b", spec.mid_cls_dev,
        "--delay", f"{delay_ms:g}", "--jitter", f"{jitter_ms:g}",
    ])


def leftover_names(netns_list: str, link_list: str, nft_tables: str,
                   prefix: str = PREFIX) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """From ``ip netns list``, ``ip -o link show`` and ``nft list tables`` output: the namespaces,
    root-namespace devices and (family, table) pairs that belong to links with ``prefix``."""
    namespaces = [line.split()[0] for line in netns_list.splitlines()
                  if line.strip() and line.split()[0].startswith(f"{prefix}-")]
    devices = []
    for line in link_list.splitlines():
        parts = line.split(":")
        if len(parts) >= 2:
            name = parts[1].strip().split("@")[0]
            if name.startswith(prefix) and name[len(prefix):len(prefix) + 1].isdigit():
                devices.append(name)
    tables = []
    for line in nft_tables.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table" and parts[2].startswith(prefix) \
                and parts[2][len(prefix):len(prefix) + 1].isdigit():
            tables.append((parts[1], parts[2]))
    return namespaces, devices, tables


# ---------------------------------------------------------------------------------------------
# running them


def run(argv: Sequence[str], check: bool = True, input_text: str | None = None) -> str:
    proc = subprocess.run(list(argv), input=input_text, capture_output=True, text=True,
                          timeout=20)
    if check and proc.returncode != 0:
        raise NetemError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def require_tools() -> None:
    """Raise :class:`NetemError` naming what is missing (root, ip, tc, nft, ethtool)."""
    if os.geteuid() != 0:
        raise NetemError("the impaired link needs root (network namespaces, tc, nftables)")
    missing = [t for t in ("ip", "tc", "nft", "ethtool") if not _which(t)]
    if missing:
        raise NetemError(f"missing tools: {', '.join(missing)} (Debian: iproute2 nftables ethtool)")


def _which(tool: str) -> bool:
    from shutil import which

    return which(tool) is not None or which(tool, path="/usr/sbin:/sbin") is not None


def free_index(start: int = 40, prefix: str = PREFIX) -> int:
    """The first X ≥ ``start`` with no ``10.88.X.*`` address and no ``<prefix>-X-*`` namespace."""
    addrs = run(["ip", "-o", "-4", "addr", "show"], check=False)
    netns = run(["ip", "netns", "list"], check=False)
    for x in range(start, 256):
        if f" 10.88.{x}." in addrs or f"{prefix}-{x}-" in netns:
            continue
        return x
    raise NetemError("no free 10.88.X.0/24")


@dataclass
class Link:
    """One impaired link; ``with Link(LinkSpec(41)) as link: ...`` builds and removes it."""

    spec: LinkSpec
    conditions: Conditions = field(default_factory=Conditions)
    _relay: subprocess.Popen[str] | None = None
    _up: bool = False

    def __enter__(self) -> Link:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> Link:
        require_tools()
        cleanup_spec(self.spec)  # a crashed run's leftovers of this very index
        atexit.register(self.down)
        self._up = True
        try:
            for argv in setup_argvs(self.spec):
                run(argv)
            run(["nft", "-f", "-"], input_text=meter_script(self.spec.meter_table,
                                                             self.spec.cls_ip))
            if self.spec.relay:
                self._start_relay(0.0, 0.0)
        except BaseException:
            self.down()
            raise
        log.info("link %s up: %s <-> %s (%s)", self.spec.index, self.spec.host_ip,
                 self.spec.cls_ip, "relay" if self.spec.relay else "direct")
        return self

    def down(self) -> None:
        if not self._up:
            return
        self._up = False
        if self._relay is not None:
            self._stop_relay()
        for ns in (self.spec.netns, self.spec.mid_netns):
            kill_netns_processes(ns)
        for argv in teardown_argvs(self.spec):
            run(argv, check=False)
        atexit.unregister(self.down)
        self.conditions = Conditions()

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the impaired classroom's namespace."""
        return in_netns(self.spec.netns, argv)

    def set(
        self,
        *,
        rate: float | None | _Keep = KEEP,
        loss: float | None | _Keep = KEEP,
        delay: float | None | _Keep = KEEP,
        jitter: float | None | _Keep = KEEP,
        up_rate: float | None | _Keep = KEEP,
        up_loss: float | None | _Keep = KEEP,
    ) -> Conditions:
        """Change the link now. ``rate``/``up_rate`` in Mbit/s (downlink toward the classroom /
        uplink from it), ``loss``/``up_loss`` in percent, ``delay``/``jitter`` in ms each way
        (needs ``LinkSpec(relay=True)``); ``None`` removes that impairment, an omitted argument
        keeps it. Returns the new :class:`Conditions`."""
        if not self._up:
            raise NetemError("the link is not up")
        s, c = self.spec, self.conditions
        new = c
        if not isinstance(rate, _Keep):
            kbit = None if rate is None else rate * 1000
            run(tbf_argv(s.host_dev, kbit), check=kbit is not None)
            new = _replace(new, down_rate_kbit=kbit)
        if not isinstance(up_rate, _Keep):
            kbit = None if up_rate is None else up_rate * 1000
            run(tbf_argv(s.cls_dev, kbit, s.netns), check=kbit is not None)
            new = _replace(new, up_rate_kbit=kbit)
        if not isinstance(loss, _Keep):
            run(in_netns(s.netns, ["nft", "-f", "-"]),
                input_text=loss_script(s.down_loss_table, s.cls_dev, loss))
            new = _replace(new, down_loss_pct=loss or None)
        if not isinstance(up_loss, _Keep):
            run(["nft", "-f", "-"], input_text=loss_script(s.up_loss_table, s.host_dev, up_loss))
            new = _replace(new, up_loss_pct=up_loss or None)
        if not isinstance(delay, _Keep) or not isinstance(jitter, _Keep):
            d = new.delay_ms if isinstance(delay, _Keep) else delay
            if isinstance(jitter, _Keep):
                j = None if delay is None else new.jitter_ms  # no delay: no jitter either
            else:
                j = jitter
            if not s.relay:
                if d or j:
                    raise NetemError("delay/jitter need LinkSpec(relay=True)")
            else:
                self._relay_set(d or 0.0, j or 0.0)
            new = _replace(new, delay_ms=d or None, jitter_ms=j or None)
        self.conditions = new
        log.info("link %s: %s", s.index, new.describe())
        return new

    def offered_bytes(self) -> int:
        """Bytes the root namespace has sent toward the classroom's address (before the cap)."""
        out = run(["nft", "list", "table", "inet", self.spec.meter_table])
        for line in out.splitlines():
            if "counter packets" in line:
                parts = line.split()
                return int(parts[parts.index("bytes") + 1])
        return 0

    def dropped_packets(self) -> dict[str, int]:
        """Packets dropped so far by the loss rules and by the downlink tbf (for the record)."""
        result = {"down_loss": 0, "up_loss": 0, "down_tbf": 0}
        for key, argv in (
            ("down_loss", in_netns(self.spec.netns, ["nft", "list", "table", "netdev",
                                                      self.spec.down_loss_table])),
            ("up_loss", ["nft", "list", "table", "netdev", self.spec.up_loss_table]),
        ):
            for line in run(argv, check=False).splitlines():
                if "counter packets" in line:
                    parts = line.split()
                    result[key] = int(parts[parts.index("packets") + 1])
        out = run(["tc", "-s", "qdisc", "show", "dev", self.spec.host_dev], check=False)
        for line in out.splitlines():
            if "dropped" in line:
                try:
                    result["down_tbf"] = int(line.split("dropped")[1].split(",")[0])
                except (IndexError, ValueError):
                    pass
        return result

    # relay process -------------------------------------------------------------------------

    def _start_relay(self, delay_ms: float, jitter_ms: float) -> None:
        self._relay = subprocess.Popen(
            relay_argv(self.spec, delay_ms, jitter_ms), stdin=subprocess.PIPE, text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(
                os.path.abspath(__file__)))},
        )
        time.sleep(0.3)
        if self._relay.poll() is not None:
            raise NetemError(f"the delay relay exited with {self._relay.returncode}")

    def _relay_set(self, delay_ms: float, jitter_ms: float) -> None:
        if self._relay is None or self._relay.poll() is not None or self._relay.stdin is None:
            raise NetemError("the delay relay is not running")
        self._relay.stdin.write(f"set {delay_ms:g} {jitter_ms:g}\n")
        self._relay.stdin.flush()

    def _stop_relay(self) -> None:
        proc, self._relay = self._relay, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # EOF: the relay exits by itself
            proc.wait(3)
        except (subprocess.TimeoutExpired, OSError):
            proc.kill()
            proc.wait(3)


def _replace(c: Conditions, **changes: float | None) -> Conditions:
    from dataclasses import replace

    return replace(c, **changes)


def kill_netns_processes(netns: str) -> None:
    """SIGKILL every process still running inside ``netns`` (ours: browsers, the relay)."""
    out = run(["ip", "netns", "pids", netns], check=False)
    for pid in out.split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError, PermissionError):
            pass


def cleanup_spec(spec: LinkSpec) -> None:
    for ns in (spec.netns, spec.mid_netns):
        kill_netns_processes(ns)
    for argv in teardown_argvs(LinkSpec(spec.index, spec.prefix, relay=True)):
        run(argv, check=False)


def cleanup(prefix: str = PREFIX) -> list[str]:
    """Remove every namespace, root-namespace device and nftables table left by links with
    ``prefix``; returns what was removed."""
    namespaces, devices, tables = leftover_names(
        run(["ip", "netns", "list"], check=False),
        run(["ip", "-o", "link", "show"], check=False),
        run(["nft", "list", "tables"], check=False),
        prefix,
    )
    removed = []
    for ns in namespaces:
        kill_netns_processes(ns)
        run(["ip", "netns", "del", ns], check=False)
        removed.append(f"netns {ns}")
    for family, table in tables:
        run(["nft", "delete", "table", family, table], check=False)
        removed.append(f"nft table {family} {table}")
    for dev in devices:
        run(["ip", "link", "del", dev], check=False)
        removed.append(f"link {dev}")
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.netem", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cleanup", action="store_true",
                        help="remove leftover namespaces/devices/tables with the prefix")
    parser.add_argument("--prefix", default=PREFIX)
    args = parser.parse_args(argv)
    if not args.cleanup:
        parser.print_help()
        return 2
    removed = cleanup(args.prefix)
    for item in removed:
        print("removed", item)
    if not removed:
        print(f"nothing left with prefix {args.prefix!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
