"""Fleets: simulate many independent nodes on all cores or on a Dask cluster, deterministically: each
node's parameters come from the fleet seed and its index alone, so every backend gives the same
results. CPython only (docs/fleet.md).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from iotbpf.ebpf import boundedjson
from iotbpf.ebpf.errors import IotbpfError
from iotbpf.ebpf.isa import M64 as MASK64
from iotbpf.ebpf.prng import splitmix64

SPEC_VERSION = 1
MAX_NODES = 1_000_000
BACKENDS = ("inprocess", "processes", "dask")


class FleetError(IotbpfError):
    """A fleet spec or backend option is invalid."""


# ------------------------------------------------------------------ deterministic draws


class NodeRandom:
    """A tiny counter-based generator: draw k of node i depends only on (fleet seed, i, k), mixed
    by the PRNG's splitmix64 (ebpf/prng.py)."""

    def __init__(self, fleet_seed: int, index: int):
        self._base = splitmix64((fleet_seed & MASK64) ^ splitmix64(index + 1))
        self._counter = 0

    def u64(self) -> int:
        self._counter += 1
        return splitmix64(self._base ^ splitmix64(self._counter))

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * (self.u64() >> 11) / float(1 << 53)

    def normal(self, mean: float, sd: float) -> float:
        u1 = max(self.uniform(0.0, 1.0), 1e-300)
        u2 = self.uniform(0.0, 1.0)
        return mean + sd * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def choice(self, items: list):
        return items[self.u64() % len(items)]


# ------------------------------------------------------------------ the spec

MAX_FLEET_DURATION_NS = 100 * 365 * 86400 * 10**9  # a node simulated for a century is enough


def parse_duration_ns(text: str) -> int:
    """A fleet's duration in DESIGN.md's grammar (``90s``, ``1.5h``, ``30d``, ``1y``), in nanoseconds."""
    from iotbpf.kernel.clock import parse_duration

    if not isinstance(text, str):
        raise FleetError("duration must be a string with a unit (e.g. \"30d\"), got %r" % (text,))
    try:
        ns = parse_duration(text)
    except ValueError as exc:
        raise FleetError(str(exc)) from None
    if not 0 < ns <= MAX_FLEET_DURATION_NS:
        raise FleetError("duration %r must be more than 0 and at most 100y" % text)
    return ns


_VARY_KEYS = {
    "sampling_period": "seconds between sensor samples (list to choose from, or {min,max})",
    "link_loss": "radio packet loss probability (number, list, or {min,max})",
    "battery_capacity_spread": "relative standard deviation of battery capacity (e.g. 0.05)",
    "traffic_rate": "incoming radio packets per hour (number, list, or {min,max})",
}


class NodeSpec:
    """Everything one node's simulation needs: plain data, picklable, the same on every backend."""

    __slots__ = ("index", "name", "app", "board", "policy", "seed", "duration_ns", "params")

    def __init__(self, index, name, app, board, policy, seed, duration_ns, params):
        self.index = index
        self.name = name
        self.app = app
        self.board = board
        self.policy = policy
        self.seed = seed
        self.duration_ns = duration_ns
        self.params = params

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self) -> str:
        return "NodeSpec(%s)" % self.to_dict()


class FleetSpec:
    """A validated fleet description (see docs/fleet.md for the JSON schema)."""

    def __init__(self, groups: list[dict], duration_ns: int, seed: int, policy: str, name: str = "fleet"):
        self.groups = groups
        self.duration_ns = duration_ns
        self.seed = seed
        self.policy = policy
        self.name = name

    @property
    def node_count(self) -> int:
        return sum(g["count"] for g in self.groups)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> FleetSpec:
        try:
            text = Path(path).read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise FleetError("fleet spec %s is not UTF-8 text" % path) from None
        except OSError as exc:
            raise FleetError("cannot read fleet spec %s: %s" % (path, exc.strerror or exc)) from None
        try:
            data = boundedjson.loads(text)
        except ValueError as exc:
            raise FleetError("fleet spec %s is not valid JSON: %s" % (path, exc)) from None
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: dict, where: str = "fleet spec") -> FleetSpec:
        if not isinstance(data, dict):
            raise FleetError("%s: must be a JSON object" % where)
        version = data.get("version", SPEC_VERSION)
        if version != SPEC_VERSION:
            raise FleetError(
                "%s: unsupported version %r (this iotbpf reads version %d)" % (where, version, SPEC_VERSION)
            )
        unknown = set(data) - {"version", "name", "seed", "duration", "policy", "groups"}
        if unknown:
            raise FleetError("%s: unknown field(s) %s" % (where, ", ".join(sorted(unknown))))
        groups = data.get("groups")
        if not isinstance(groups, list) or not groups:
            raise FleetError("%s: 'groups' must be a non-empty list" % where)
        seed = data.get("seed", 1)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise FleetError("%s: 'seed' must be a non-negative integer" % where)
        policy = data.get("policy", "batching")
        if not isinstance(policy, str):
            raise FleetError("%s: 'policy' must be a string" % where)
        checked = [_check_group(g, "%s: groups[%d]" % (where, i)) for i, g in enumerate(groups)]
        spec = cls(
            checked,
            parse_duration_ns(data.get("duration", "1y")),
            seed,
            policy,
            _check_name(data.get("name", "fleet"), "%s: 'name'" % where),
        )
        if spec.node_count > MAX_NODES:
            raise FleetError(
                "%s: %d nodes is more than the limit of %d" % (where, spec.node_count, MAX_NODES)
            )
        return spec

    def nodes(self) -> Iterator[NodeSpec]:
        """Every node's spec, in index order; each depends only on the fleet seed and its index."""
        index = 0
        for group in self.groups:
            for _ in range(group["count"]):
                rng = NodeRandom(self.seed, index)
                params = _draw_params(group.get("vary", {}), rng)
                node_seed = rng.u64() & 0x7FFFFFFF
                name = "%s-%05d" % (group.get("name") or group["app"], index)
                yield NodeSpec(
                    index,
                    name,
                    group["app"],
                    group["board"],
                    group.get("policy", self.policy),
                    node_seed,
                    self.duration_ns,
                    params,
                )
                index += 1

    def to_dict(self) -> dict:
        return {
            "version": SPEC_VERSION,
            "name": self.name,
            "seed": self.seed,
            "duration_s": self.duration_ns / 1e9,
            "policy": self.policy,
            "groups": self.groups,
        }


def _check_group(group, where: str) -> dict:
    if not isinstance(group, dict):
        raise FleetError("%s: must be an object" % where)
    unknown = set(group) - {"name", "count", "app", "board", "policy", "vary"}
    if unknown:
        raise FleetError("%s: unknown field(s) %s" % (where, ", ".join(sorted(unknown))))
    count = group.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise FleetError("%s: 'count' must be a positive integer" % where)
    for key in ("app", "board"):
        if not isinstance(group.get(key), str) or not group[key]:
            raise FleetError("%s: %r must be a non-empty string" % (where, key))
    if "name" in group:
        _check_name(group["name"], where + ": 'name'")
    vary = group.get("vary", {})
    if not isinstance(vary, dict):
        raise FleetError("%s: 'vary' must be an object" % where)
    for key, value in vary.items():
        if key not in _VARY_KEYS:
            raise FleetError(
                "%s: unknown 'vary' key %r (known: %s)" % (where, key, ", ".join(sorted(_VARY_KEYS)))
            )
        _check_variation(value, "%s.vary.%s" % (where, key), _VARY_LIMITS[key])
    return dict(group)


def _check_name(name, where: str) -> str:
    """Fleet and group names become node names and so MQTT topic levels: no '/', '+', '#'."""
    if not isinstance(name, str) or not name or len(name) > 64 or any(c in name for c in "/+#\0 "):
        raise FleetError("%s must be a string of 1-64 characters without spaces, '/', '+' or '#'" % where)
    return name


# key -> (lowest, highest) allowed value of that variation
_VARY_LIMITS = {
    "sampling_period": (0.001, 365 * 86400.0),
    "link_loss": (0.0, 1.0),
    "battery_capacity_spread": (0.0, 1.0),
    "traffic_rate": (0.0, 3.6e6),
}


def _check_variation(value, where: str, limits: tuple) -> None:
    low_limit, high_limit = limits

    def ok(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
            and low_limit <= v <= high_limit

    if ok(value):
        return
    if isinstance(value, list) and value and all(ok(v) for v in value):
        return
    if isinstance(value, dict) and set(value) == {"min", "max"} and ok(value["min"]) and ok(value["max"]) \
            and value["min"] <= value["max"]:
        return
    raise FleetError('%s: must be a number from %g to %g, a non-empty list of them or {"min": a, "max": b}'
                     % (where, low_limit, high_limit))


def _draw_params(vary: dict, rng: NodeRandom) -> dict:
    params = {}
    for key in sorted(vary):
        value = vary[key]
        if key == "battery_capacity_spread":
            params["battery_capacity_scale"] = max(0.05, rng.normal(1.0, float(value)))
        elif isinstance(value, list):
            params[key] = rng.choice(value)
        elif isinstance(value, dict):
            params[key] = rng.uniform(value["min"], value["max"])
        else:
            params[key] = value
    return params


# ------------------------------------------------------------------ backends


def _run_chunk(simulate: Callable[[NodeSpec], dict], chunk: list[NodeSpec]) -> list[dict]:
    return [simulate(node) for node in chunk]


def chunked(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def default_chunk_size(nodes: int, workers: int) -> int:
    """Enough chunks per worker to balance load, few enough to keep scheduling overhead small."""
    return max(1, min(64, nodes // max(1, workers * 8)))


def run_nodes(
    nodes: list[NodeSpec],
    simulate: Callable[[NodeSpec], dict],
    backend: str = "processes",
    workers: int | None = None,
    cluster: str | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """Simulate every node with ``simulate`` on the chosen backend; results in node-index order.

    Results stream back as chunks finish (``progress(done, total)`` is called each time);
    the order of completion never changes the returned list.
    """
    if backend not in BACKENDS:
        raise FleetError("unknown backend %r (use one of: %s)" % (backend, ", ".join(BACKENDS)))
    total = len(nodes)
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise FleetError("--workers must be at least 1")
    size = chunk_size or default_chunk_size(total, workers)
    chunks = list(chunked(nodes, size))
    results: list[dict] = []
    done = 0

    def collect(batch: list[dict]) -> None:
        nonlocal done
        results.extend(batch)
        done += len(batch)
        if progress is not None:
            progress(done, total)

    if backend == "inprocess":
        for chunk in chunks:
            collect(_run_chunk(simulate, chunk))
    elif backend == "processes":
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_run_chunk, simulate, chunk) for chunk in chunks]
            for future in as_completed(futures):
                collect(future.result())
    else:
        for batch in _run_dask(chunks, simulate, workers, cluster):
            collect(batch)
    results.sort(key=lambda r: r["index"])
    return results


def check_cluster_address(cluster: str) -> str:
    """``tcp://host:port`` (scheme optional) of a Dask scheduler, or FleetError saying what is wrong."""
    address = cluster if "://" in cluster else "tcp://" + cluster
    scheme, _, rest = address.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme not in ("tcp", "tls", "ucx") or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise FleetError("bad --cluster %r: use tcp://HOST:PORT (e.g. tcp://scheduler:8786) or 'local'" % cluster)
    return address


def _run_dask(
    chunks: list[list[NodeSpec]], simulate, workers: int, cluster: str | None
) -> Iterator[list[dict]]:
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_as_completed
    except ImportError:
        raise FleetError("the dask backend needs the 'fleet' extra: pip install 'iotbpf[fleet]'") from None
    local = None
    try:
        if cluster in (None, "", "local"):
            local = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
            client = Client(local)
        else:
            address = check_cluster_address(cluster)
            try:
                client = Client(address, timeout=10)
            except OSError as exc:
                raise FleetError("cannot reach the Dask scheduler at %s: %s" % (address, exc)) from None
        with client:
            futures = [client.submit(_run_chunk, simulate, chunk, pure=False) for chunk in chunks]
            for future in dask_as_completed(futures):
                yield future.result()
    finally:
        if local is not None:
            local.close()


# ------------------------------------------------------------------ statistics


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    position = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def histogram(values: list[float], bins: int = 20) -> dict:
    """Equal-width histogram as plain data: bin edges and counts."""
    if not values:
        return {"edges": [], "counts": []}
    low, high = min(values), max(values)
    if high == low:
        high = low + 1.0
    width = (high - low) / bins
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / width))] += 1
    return {"edges": [low + i * width for i in range(bins + 1)], "counts": counts}


def fleet_statistics(results: list[dict]) -> dict:
    """Fleet-level numbers: lifetime percentiles, first death, totals, histogram."""
    lifetimes = sorted(r["lifetime_days"] for r in results if r.get("lifetime_days") is not None)
    dead = [r for r in results if r.get("died_at_days") is not None]
    first = min(dead, key=lambda r: (r["died_at_days"], r["index"])) if dead else None
    return {
        "nodes": len(results),
        "lifetime_days": {"p%d" % q: percentile(lifetimes, q) for q in (1, 5, 10, 25, 50, 75, 90, 95, 99)}
        | {
            "min": lifetimes[0] if lifetimes else None,
            "max": lifetimes[-1] if lifetimes else None,
            "mean": sum(lifetimes) / len(lifetimes) if lifetimes else None,
        },
        "first_death": None if first is None else {"node": first["name"], "days": first["died_at_days"]},
        "dead_nodes": len(dead),
        "energy_j_total": sum(r.get("energy_j", 0.0) for r in results),
        "deadline_misses_total": sum(r.get("deadline_misses", 0) for r in results),
        "faults_total": sum(r.get("faults", 0) for r in results),
        "lifetime_histogram": histogram(lifetimes),
    }


# ------------------------------------------------------------------ one node

SOC_SAMPLES = 24  # state-of-charge samples per node over the run, for the fleet SoC plot

# The `sampling_period` variation follows the bundled apps' convention: timer 0 samples, and the
# app's `config` (a map, or the C global in section .data.config) holds `period_ns` at offset 8
# and `low_power_period_ns` (5x) at offset 16.
_CONFIG_PERIOD_OFFSET = 8
_CONFIG_LOW_POWER_OFFSET = 16


def _board_for(node: NodeSpec):
    from iotbpf.energy.board import Board, find_file, read_json

    path = find_file("boards", node.board, ".json")
    data = read_json(path)
    scale = node.params.get("battery_capacity_scale")
    if scale is not None and isinstance(data.get("battery"), dict) and "capacity_mah" in data["battery"]:
        data = dict(data)
        data["battery"] = dict(data["battery"])
        data["battery"]["capacity_mah"] = data["battery"]["capacity_mah"] * scale
    return Board(data, path)


def _sim_config(manifest, params: dict) -> dict:
    config = json.loads(json.dumps(manifest.sim or {}))
    radio = config.setdefault("radio", {})
    if "link_loss" in params:
        radio["loss_ppm"] = int(round(min(1.0, params["link_loss"]) * 1_000_000))
    if "traffic_rate" in params and params["traffic_rate"] > 0:
        radio["traffic"] = [{"src": 1000, "rate_per_hour": params["traffic_rate"], "len": 24}]
    return config


def _set_sampling_timer(node_obj, period_ns: int) -> None:
    """Before boot: the first manifest timer of the first app fires every ``period_ns``."""
    manifest = node_obj.manifests[0]
    manifest.timer_specs = [(tid, period_ns, period_ns, min(jitter, period_ns // 2)) if i == 0
                            else (tid, start, period, jitter)
                            for i, (tid, start, period, jitter) in enumerate(manifest.timer_specs)]


def _set_sampling_config(runtime, period_ns: int) -> None:
    """After boot (the boot program wrote its defaults): the app's `config` map agrees."""
    import struct

    for app in runtime.apps:
        config = app.maps.get("config", app.maps.get(".data.config"))
        if config is None or config.spec.value_size < _CONFIG_LOW_POWER_OFFSET + 8:
            continue
        key = struct.pack("<I", 0)
        value = bytearray(config.lookup(key) or bytes(config.spec.value_size))
        struct.pack_into("<QQ", value, _CONFIG_PERIOD_OFFSET, period_ns, 5 * period_ns)
        config.update(key, bytes(value), 0)


def simulate_node(node: NodeSpec) -> dict:
    """Simulate one node of a fleet; a plain, picklable dict of what the fleet report needs."""
    from iotbpf.api import Node, find_app
    from iotbpf.kernel import manifest as manifest_module

    manifest = manifest_module.load(str(find_app(node.app)))
    board = _board_for(node)
    node_obj = Node(node.app, board=board, seed=node.seed, policy=node.policy, node_id=node.index,
                    sim=_sim_config(manifest, node.params))
    runtime = node_obj.build()
    period_ns = int(float(node.params["sampling_period"]) * 1e9) if "sampling_period" in node.params else None
    if period_ns:
        _set_sampling_timer(node_obj, period_ns)
    runtime.boot()
    if period_ns:
        _set_sampling_config(runtime, period_ns)
    runtime.start_platform(node.duration_ns)
    scheduler = node_obj.scheduler
    soc = []
    for step in range(1, SOC_SAMPLES + 1):
        runtime.run_until(node.duration_ns * step // SOC_SAMPLES)
        soc.append(scheduler.soc() if scheduler is not None else None)
        if runtime.dead_at_ns is not None:
            soc.extend([0.0] * (SOC_SAMPLES - step))
            break
    summary = runtime.summary()
    energy = summary.get("energy") or (scheduler.summary() if scheduler is not None else {})
    dead_ns = summary.get("battery_dead_ns")
    tx = summary["radio"]["tx"]
    return {
        "index": node.index,
        "name": node.name,
        "app": node.app,
        "board": node.board,
        "policy": node.policy,
        "seed": node.seed,
        "params": node.params,
        "energy_j": energy.get("energy_j", 0.0),
        "average_current_a": energy.get("average_current_a", 0.0),
        "components_j": {c: e["energy_j"] for c, e in energy.get("components", {}).items()},
        "apps_j": dict(energy.get("apps", {})),
        "lifetime_days": (dead_ns / 86400e9) if dead_ns is not None else energy.get("lifetime_days"),
        "died_at_days": None if dead_ns is None else dead_ns / 86400e9,
        "deadline_misses": tx["missed_deadlines"],
        "packets_sent": tx["sent"],
        "packets_lost": tx["lost"],
        "faults": summary["faults"],
        "soc": soc,
    }


def run_fleet(spec: FleetSpec, backend: str = "processes", workers: int | None = None,
              cluster: str | None = None, progress: Callable[[int, int], None] | None = None,
              simulate: Callable[[NodeSpec], dict] = simulate_node) -> dict:
    """Simulate every node of ``spec``; returns {spec, backend, workers, nodes, stats, seconds}."""
    started = time.monotonic()
    nodes = list(spec.nodes())
    results = run_nodes(nodes, simulate, backend=backend, workers=workers, cluster=cluster, progress=progress)
    return {
        "version": SPEC_VERSION,
        "spec": spec.to_dict(),
        "backend": backend,
        "workers": 1 if backend == "inprocess" else (workers or os.cpu_count() or 1),
        "seconds": time.monotonic() - started,
        "stats": fleet_statistics(results),
        "soc_samples": SOC_SAMPLES,
        "nodes": results,
    }


def deterministic_view(report: dict) -> dict:
    """The part of a fleet report that must be identical across backends and worker counts."""
    return {"spec": report["spec"], "stats": report["stats"], "nodes": report["nodes"]}
