"""Control-flow structuring (engines/compiler/structure.py): generated while/if code walks the graph exactly.

Random graphs are turned into Python with structure.structure/lower/render; running that code with
a stream of branch decisions must visit the same nodes, in the same order, as walking the graph.
"""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotbpf.ebpf.engines.compiler import structure
from iotbpf.ebpf.isa import cfg


def walk(succs, decisions, limit):
    node, trace, i = 0, [], 0
    while len(trace) < limit:
        trace.append(node)
        out = succs[node]
        if not out:
            break
        if len(out) == 1:
            node = out[0]
        else:
            node = out[0] if decisions[i % len(decisions)] else out[1]
            i += 1
    return trace


class Stop(Exception):
    pass


def run_structured(succs, decisions, limit):
    stmts = structure.lower(structure.structure(succs, 0), terminal={n for n, s in enumerate(succs) if not s})
    terminal = {n for n, s in enumerate(succs) if not s}

    def code_lines(n):
        lines = ["T(%d)" % n]
        if n in terminal:
            lines.append("return")
        return lines

    lines = ["def f(T, D):"]
    if structure.uses_jumps(stmts):
        lines.append("    _j = 0")
    lines += structure.render(stmts, code_lines, lambda n: "D()", terminal)
    source = "\n".join(lines) + "\n"
    namespace = {}
    exec(compile(source, "<structured>", "exec"), namespace)
    trace = []
    state = {"i": 0}

    def record(n):
        if len(trace) >= limit:
            raise Stop()
        trace.append(n)

    def decide():
        d = decisions[state["i"] % len(decisions)]
        state["i"] += 1
        return d

    try:
        namespace["f"](record, decide)
    except Stop:
        pass
    return trace, source


def random_graph(rng, n):
    succs = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.15 or i == n - 1:
            succs.append([])
        elif kind < 0.5:
            succs.append([rng.randrange(n)])
        else:
            a = rng.randrange(n)
            b = rng.randrange(n)
            succs.append([a, b] if a != b else [a])
    return succs


def structured_graph(rng, n):
    """Mostly forward edges plus back edges to dominating nodes: reducible by construction."""
    succs = [[] for _ in range(n)]
    for i in range(n - 1):
        fwd = [rng.randrange(i + 1, n)]
        if rng.random() < 0.6:
            fwd.append(rng.randrange(i + 1, n))
        if rng.random() < 0.25 and i > 0:
            fwd[-1] = rng.randrange(0, i + 1)  # back edge; kept only if reducible
        succs[i] = fwd if len(fwd) == 1 or fwd[0] != fwd[1] else fwd[:1]
    return succs


@given(st.integers(0, 2**32), st.integers(2, 24), st.lists(st.booleans(), min_size=1, max_size=40))
def test_structured_code_follows_the_graph(seed, n, decisions):
    rng = random.Random(seed)
    succs = structured_graph(rng, n) if seed % 2 else random_graph(rng, n)
    graph = cfg.Graph(succs, 0)
    if not graph.reducible:
        with pytest.raises(structure.StructureError):
            structure.structure(succs, 0)
        return
    expected = walk(succs, decisions, 200)
    actual, source = run_structured(succs, decisions, 200)
    assert actual == expected, source


def test_simple_loop_becomes_a_while_without_dispatch():
    # 0 -> 1; 1: if -> 2 else 3; 2 -> 1 (back edge); 3 exit
    succs = [[1], [2, 3], [1], []]
    _, source = run_structured(succs, [True, True, False], 50)
    assert "while True:" in source
    assert "_j" not in source
    assert source.count("while True:") == 1


def test_diamond_needs_no_loop():
    succs = [[1, 2], [3], [3], []]
    trace, source = run_structured(succs, [False], 50)
    assert trace == [0, 2, 3]
    assert "while" not in source


def test_irreducible_graph_is_refused():
    # two entries into the cycle 1 <-> 2
    succs = [[1, 2], [2], [1, 3], []]
    assert not cfg.Graph(succs, 0).reducible
    with pytest.raises(structure.StructureError):
        structure.structure(succs, 0)


def test_dominators_of_a_diamond():
    succs = [[1, 2], [3], [3], []]
    idom = cfg.dominators(succs, 0)
    assert idom == {0: 0, 1: 0, 2: 0, 3: 0}
    assert cfg.dominates(idom, 0, 3)
    assert not cfg.dominates(idom, 1, 3)


def test_nested_loop_exit_from_inner_loop_to_after_outer():
    # 0 -> 1 (outer header); 1 -> 2 (inner header); 2: -> 3 or 5 (leave both); 3: -> 2 or 4;
    # 4 -> 1 or 5; 5 exit
    succs = [[1], [2], [3, 5], [2, 4], [1, 5], []]
    for decisions in ([True, True, False, True, True, False, False], [True, False, False, True]):
        expected = walk(succs, decisions, 100)
        actual, _ = run_structured(succs, decisions, 100)
        assert actual == expected


def test_long_chain_does_not_recurse_deeply():
    # A chain of if-then diamonds: flat code, whatever the length.
    n = 3000
    succs = []
    for i in range(0, n - 2, 2):
        succs.append([i + 1, i + 2])
        succs.append([i + 2])
    succs += [[] for _ in range(n - len(succs))]
    decisions = [True, False, False]
    expected = walk(succs, decisions, 5000)
    actual, source = run_structured(succs, decisions, 5000)
    assert actual == expected
    assert "while" not in source


def test_ladder_too_nested_for_python_is_refused():
    # i -> i+1, i+2: every node merges two paths; as Python it would nest 3000 loops deep.
    n = 3000
    succs = [[i + 1, i + 2] for i in range(n - 2)] + [[n - 1], []]
    with pytest.raises(structure.StructureError):
        structure.render(structure.lower(structure.structure(succs, 0)), lambda n: ["pass"], lambda n: "c", ())
