from __future__ import annotations

from licsrv.middlewares import client_ip
from licsrv.settings import _networks

PROXIES = _networks("10.0.0.0/8, 127.0.0.1/32")


def test_forwarded_for_is_ignored_from_an_untrusted_peer():
    assert client_ip("203.0.113.9", "1.2.3.4", PROXIES) == "203.0.113.9"


def test_forwarded_for_is_believed_from_a_trusted_proxy():
    assert client_ip("10.1.2.3", "198.51.100.7", PROXIES) == "198.51.100.7"


def test_spoofed_left_entries_do_not_win():
    # The client put 1.1.1.1 in the header itself; the proxy appended the real address.
    assert client_ip("127.0.0.1", "1.1.1.1, 198.51.100.7, 10.0.0.5", PROXIES) == "198.51.100.7"


def test_garbage_in_the_header_stops_at_the_last_good_address():
    assert client_ip("10.0.0.1", "not-an-ip", PROXIES) == "10.0.0.1"
    assert client_ip("garbage", None, PROXIES) is None


def test_no_trusted_proxies_means_the_peer():
    assert client_ip("10.0.0.1", "198.51.100.7", ()) == "10.0.0.1"
