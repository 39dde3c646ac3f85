"""The public API package (iotbpf/api/ and the lazy names of ``iotbpf``): every public object and
member is documented, and the docstrings' examples run."""

import pydoc

import iotbpf


def test_public_objects_are_documented():
    for name in ("Program", "Node", "SimulationResult", "compare"):
        obj = getattr(iotbpf, name)
        assert obj.__doc__ and len(obj.__doc__) > 80, name
    text = pydoc.render_doc(iotbpf.Node, renderer=pydoc.plaintext)
    for word in ("simulate", "maps", "board", "seed", "post", "run_realtime", "days"):
        assert word in text
    for cls in (iotbpf.Program, iotbpf.Node, iotbpf.SimulationResult, iotbpf.MapView):
        for attr in dir(cls):
            if not attr.startswith("_"):
                member = getattr(cls, attr)
                if callable(member) or isinstance(member, property):
                    doc = member.__doc__ if not isinstance(member, property) else member.fget.__doc__
                    assert doc, "%s.%s has no docstring" % (cls.__name__, attr)


def test_docstring_examples_run():
    import doctest
    import importlib
    import pkgutil

    import iotbpf.api

    total = 0
    for info in pkgutil.iter_modules(iotbpf.api.__path__):
        module = importlib.import_module("iotbpf.api." + info.name)
        failures, tried = doctest.testmod(module)
        assert failures == 0, info.name
        total += tried
    assert total >= 5
