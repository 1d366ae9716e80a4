"""The impaired-link harness's pure parts: names, commands, nftables scripts, the relay's delay
line with a fake clock, leftover detection."""

from __future__ import annotations

import pytest

from loadtest.l2relay import DelayLine, parse_command
from loadtest.netem import (
    Conditions,
    LinkSpec,
    in_netns,
    leftover_names,
    loss_rule,
    loss_script,
    meter_script,
    relay_argv,
    setup_argvs,
    tbf_argv,
    teardown_argvs,
)


def test_spec_names_and_addresses() -> None:
    s = LinkSpec(41)
    assert (s.netns, s.mid_netns) == ("wl-41-cls", "wl-41-mid")
    assert (s.host_dev, s.cls_dev, s.mid_host_dev, s.mid_cls_dev) == ("wl41h", "wl41c", "wl41mh",
                                                                      "wl41mc")
    assert (s.host_ip, s.cls_ip) == ("10.88.41.1", "10.88.41.2")
    assert all(len(d) <= 15 for d in (LinkSpec(255, "abcd").mid_host_dev,))


@pytest.mark.parametrize("index", [-1, 256])
def test_spec_rejects_bad_index(index: int) -> None:
    with pytest.raises(ValueError):
        LinkSpec(index)


def test_spec_rejects_bad_prefix() -> None:
    with pytest.raises(ValueError):
        LinkSpec(1, prefix="W L")


def test_direct_link_setup() -> None:
    cmds = setup_argvs(LinkSpec(7))
    assert cmds[0] == ["ip", "netns", "add", "wl-7-cls"]
    assert ["ip", "link", "add", "wl7h", "type", "veth", "peer", "name", "wl7c", "netns",
            "wl-7-cls"] in cmds
    assert ["ip", "addr", "add", "10.88.7.1/24", "dev", "wl7h"] in cmds
    assert ["ip", "-n", "wl-7-cls", "addr", "add", "10.88.7.2/24", "dev", "wl7c"] in cmds
    assert not any("wl-7-mid" in c for c in cmds)
    # no route out of the namespace: nothing adds one
    assert not any("route" in c for c in cmds)
    # offloads off on both ends, the namespace end via ip netns exec
    assert ["ip", "netns", "exec", "wl-7-cls", "ethtool", "-K", "wl7c", "tx", "off", "tso", "off",
            "gso", "off", "gro", "off"] in cmds


def test_relay_link_setup_puts_a_middle_namespace_between() -> None:
    cmds = setup_argvs(LinkSpec(7, relay=True))
    assert ["ip", "netns", "add", "wl-7-mid"] in cmds
    assert ["ip", "link", "add", "wl7h", "type", "veth", "peer", "name", "wl7mh", "netns",
            "wl-7-mid"] in cmds
    assert ["ip", "-n", "wl-7-mid", "link", "add", "wl7mc", "type", "veth", "peer", "name",
            "wl7c", "netns", "wl-7-cls"] in cmds
    assert ["ip", "-n", "wl-7-mid", "link", "set", "wl7mh", "promisc", "on", "up"] in cmds


def test_teardown() -> None:
    cmds = teardown_argvs(LinkSpec(7, relay=True))
    assert ["ip", "netns", "del", "wl-7-cls"] in cmds
    assert ["ip", "netns", "del", "wl-7-mid"] in cmds
    assert ["nft", "delete", "table", "netdev", "wl7_up_loss"] in cmds
    assert ["nft", "delete", "table", "inet", "wl7_meter"] in cmds


def test_tbf() -> None:
    assert tbf_argv("wl7h", 1200) == ["tc", "qdisc", "replace", "dev", "wl7h", "root", "tbf",
                                      "rate", "1200kbit", "burst", "15000", "latency", "200ms"]
    assert tbf_argv("wl7c", 1500.4, "wl-7-cls")[:4] == ["ip", "netns", "exec", "wl-7-cls"]
    assert tbf_argv("wl7h", None) == ["tc", "qdisc", "del", "dev", "wl7h", "root"]
    with pytest.raises(ValueError):
        tbf_argv("wl7h", 0)


def test_loss_rule() -> None:
    assert loss_rule(5) == "meta protocol ip numgen random mod 100 < 5 counter drop"
    assert loss_rule(2.5) == "meta protocol ip numgen random mod 10000 < 250 counter drop"
    for bad in (0, 100, -1):
        with pytest.raises(ValueError):
            loss_rule(bad)


def test_loss_script_is_atomic_and_on_ingress() -> None:
    script = loss_script("wl7_down_loss", "wl7c", 3)
    lines = script.splitlines()
    assert lines[:2] == ["table netdev wl7_down_loss {}", "delete table netdev wl7_down_loss"]
    assert 'type filter hook ingress device "wl7c" priority -500; policy accept;' in script
    assert "numgen random mod 100 < 3 counter drop" in script
    # removing the loss: the table goes, nothing is re-added
    assert loss_script("wl7_down_loss", "wl7c", None).splitlines() == lines[:2]
    assert loss_script("wl7_down_loss", "wl7c", 0).splitlines() == lines[:2]


def test_meter_counts_before_the_cap() -> None:
    script = meter_script("wl7_meter", "10.88.7.2")
    assert "hook output" in script and "ip daddr 10.88.7.2 counter" in script
    assert "drop" not in script


def test_relay_argv() -> None:
    argv = relay_argv(LinkSpec(7, relay=True), 45, 10, python="py")
    assert argv == ["ip", "netns", "exec", "wl-7-mid", "py", "-m", "loadtest.l2relay", "--a",
                    "wl7mh", "--b", "wl7mc", "--delay", "45", "--jitter", "10"]


def test_in_netns() -> None:
    assert in_netns(None, ["x"]) == ["x"]
    assert in_netns("n", ["x"]) == ["ip", "netns", "exec", "n", "x"]


def test_leftovers_only_with_the_prefix() -> None:
    netns = "wl-41-cls (id: 3)\nwl-41-mid\nhC-tls-1\nwlan\n"
    links = ("1: lo: <LOOPBACK> mtu 65536\n7: wl41h@if2: <BROADCAST> mtu 1500\n"
             "8: wlan0: <BROADCAST>\n9: hCth1@if3: <BROADCAST>\n")
    tables = "table netdev wl41_up_loss\ntable inet wl41_meter\ntable inet filter\n" \
             "table netdev wlx\n"
    ns, devs, tabs = leftover_names(netns, links, tables)
    assert ns == ["wl-41-cls", "wl-41-mid"]
    assert devs == ["wl41h"]
    assert tabs == [("netdev", "wl41_up_loss"), ("inet", "wl41_meter")]


def test_conditions_describe() -> None:
    assert Conditions().describe() == "unimpaired"
    c = Conditions(down_rate_kbit=1200, down_loss_pct=3, delay_ms=45, jitter_ms=10)
    assert c.describe() == "down 1.20 Mbit/s, down loss 3%, delay 45+U(0,10) ms each way"


# the relay's delay line, with a fake clock


def test_delay_line_holds_each_frame() -> None:
    line = DelayLine(delay_ms=45, jitter_ms=10, rand=lambda: 0.5)
    assert line.push(b"a", now=1.0) == pytest.approx(1.050)
    assert line.pop_due(1.049) == []
    assert line.pop_due(1.050) == [b"a"]
    assert line.relayed == 1


def test_delay_line_keeps_order_under_jitter() -> None:
    draws = iter([1.0, 0.0, 0.5])
    line = DelayLine(delay_ms=10, jitter_ms=20, rand=lambda: next(draws))
    line.push(b"1", 0.000)  # due 0.030
    line.push(b"2", 0.001)  # would be 0.011: held until 0.030, after frame 1
    line.push(b"3", 0.002)  # 0.022 → 0.030
    assert line.pop_due(0.029) == []
    assert line.pop_due(0.030) == [b"1", b"2", b"3"]


def test_delay_line_is_bounded() -> None:
    line = DelayLine(delay_ms=100, max_frames=2)
    assert line.push(b"1", 0) is not None
    assert line.push(b"2", 0) is not None
    assert line.push(b"3", 0) is None
    assert line.dropped == 1
    assert line.next_due() == pytest.approx(0.1)


def test_delay_line_set_changes_later_frames() -> None:
    line = DelayLine(delay_ms=0)
    line.push(b"now", 5.0)
    line.set(50, 0)
    assert line.push(b"later", 5.0) == pytest.approx(5.05)
    with pytest.raises(ValueError):
        line.set(-1, 0)


def test_relay_command() -> None:
    assert parse_command("set 45 10\n") == (45.0, 10.0)
    for bad in ("", "set 1", "delay 1 2", "set -1 0", "set 1 x", "set 99999 0"):
        with pytest.raises(ValueError):
            parse_command(bad)
