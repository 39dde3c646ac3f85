"""api/views.py: a map view's errors name the problem (unknown map, wrong size, wrong type)."""


import pytest

import iotbpf
from iotbpf import IotbpfError


def test_map_view_bad_input_is_clear():
    node = iotbpf.Node("rx_filter")
    with pytest.raises(IotbpfError, match="no map or global variable 'nope'.*blocklist"):
        node.maps["nope"]
    blocklist = node.maps["blocklist"]
    with pytest.raises(IotbpfError, match="3 bytes, the map takes 4-byte keys"):
        blocklist[b"abc"] = 1
    with pytest.raises(IotbpfError, match="does not fit in 4 bytes"):
        blocklist[1 << 40] = 1
    with pytest.raises(IotbpfError, match="expected an integer"):
        blocklist[1] = "x"
    with pytest.raises(KeyError):
        blocklist[12345]
    with pytest.raises(IotbpfError, match="no member 'nope'"):
        node.maps["limits"][0] = {"nope": 1}
    with pytest.raises(IotbpfError, match="declared by the programs"):
        node.maps["x"] = 1
