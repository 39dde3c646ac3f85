"""api/comparison.py: compare() gives the rows and the table `simulate --compare` prints."""


import pytest

import iotbpf
from iotbpf import IotbpfError


def test_compare_rows_match_the_cli_table(cli):
    rows = iotbpf.compare(["always_on", "batching", "oracle"], app="sensor_node", days=1, seed=2)
    assert [r["policy"] for r in rows] == ["always_on", "batching", "oracle (live)", "oracle"]
    assert rows.row("oracle")["ratio_to_oracle"] == pytest.approx(1.0)
    assert rows.row("always_on")["energy_j"] > rows.row("batching")["energy_j"] >= rows.row("oracle")["energy_j"]
    r = cli("simulate", "sensor_node", "--duration", "1d", "--seed", "2", "--compare", "always_on,batching,oracle")
    assert r.code == 0 and r.out == rows.text()
    assert iotbpf.compare("batching,always_on", duration="6h").row("batching")["deadline_misses"] == 0


def test_compare_bad_input():
    with pytest.raises(IotbpfError, match="unknown policy 'fastest'.*always_on"):
        iotbpf.compare(["fastest"], days=1)
    with pytest.raises(IotbpfError, match="at least one policy"):
        iotbpf.compare([], days=1)
    with pytest.raises(IotbpfError, match="positive"):
        iotbpf.compare(["batching"], days=0)
