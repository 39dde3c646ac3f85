"""No import circle among iotbpf's modules (imports inside functions count too); KNOWN would list a
circle accepted on purpose (none is), and none may ever be in ebpf/."""

import grimp

# Each entry: the modules of one circle accepted on purpose (docs/architecture.md, "Next step").
KNOWN = []  # none left


def import_graph(package="iotbpf"):
    """{module: set of modules of ``package`` it imports directly, anywhere in its file}."""
    graph = grimp.build_graph(package)
    return {m: {i for i in graph.find_modules_directly_imported_by(m) if i.split(".")[0] == package}
            for m in graph.modules}


def circles(graph):
    """The strongly connected components with more than one module (Tarjan, iterative), sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.add(m)
                    if m == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def test_the_finder_sees_a_circle_and_nothing_else():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_grimp_sees_imports_inside_functions():
    # maps/create.py imports nothing at the top for its families; vm.py imports maps in a method
    assert "iotbpf.ebpf.maps" in import_graph()["iotbpf.ebpf.engines.vm"]


def test_no_import_circle_but_the_known_ones():
    unknown = []
    for component in circles(import_graph()):
        listed = set().union(*[k for k in KNOWN if k & set(component)])
        if not set(component) <= listed:
            unknown.append(component)
    assert unknown == [], "import circles: %s" % unknown


def test_no_known_circle_is_in_ebpf():
    assert not [k for k in KNOWN if any(m.startswith("iotbpf.ebpf") for m in k)]
