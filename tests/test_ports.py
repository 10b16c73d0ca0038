"""Each pytest run of ``dev.py test`` takes its own share of the tests' port ranges."""

from __future__ import annotations

import socket

import pytest

from tests import ports


def test_without_a_slice_a_run_has_the_whole_range(monkeypatch):
    monkeypatch.delenv("OMNIMAN_TEST_PORT_SLICE", raising=False)
    assert ports.port_range(8300, 8399) == (8300, 8399)


def test_the_slices_of_a_range_never_overlap_and_stay_inside_it(monkeypatch):
    for first, last in [(8300, 8399), (8600, 8699), (8201, 8299), (16350, 16390), (8100, 8199)]:
        shares = []
        for k in range(1, 5):
            monkeypatch.setenv("OMNIMAN_TEST_PORT_SLICE", f"{k}/4")
            shares.append(ports.port_range(first, last))
        assert all(first <= lo <= hi <= last for lo, hi in shares), shares
        assert all(a[1] < b[0] for a, b in zip(shares, shares[1:], strict=False)), shares
    monkeypatch.setenv("OMNIMAN_TEST_PORT_SLICE", "2/4")
    assert ports.port_range(8300, 8399) == (8325, 8349)


@pytest.mark.parametrize("spec", ["0/4", "5/4", "1/0", "x", "1/200"])
def test_a_slice_that_does_not_split_the_range_is_an_error(monkeypatch, spec):
    monkeypatch.setenv("OMNIMAN_TEST_PORT_SLICE", spec)
    with pytest.raises(ValueError, match="OMNIMAN_TEST_PORT_SLICE"):
        ports.port_range(8300, 8399)


def test_a_free_port_is_of_the_runs_share_and_bindable(monkeypatch):
    monkeypatch.setenv("OMNIMAN_TEST_PORT_SLICE", "3/4")
    lo, hi = ports.port_range(8300, 8399)
    port = ports.free_port(8300, 8399)
    assert lo <= port <= hi
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
