"""The public Python API of iotbpf, in the spirit of bcc: build, load, run and measure in a few lines.
Exported lazily from ``iotbpf``; the CLI is built on these objects. One module per object: program,
node, result, views (typed maps), comparison, apps and clang (building).
"""

from iotbpf.api.apps import build_app, find_app, load_app_programs
from iotbpf.api.clang import compile_c, find_clang, include_dir, path_map_flags
from iotbpf.api.comparison import Comparison, compare
from iotbpf.api.node import DEFAULT_SAMPLES, Node, duration_ns
from iotbpf.api.program import Program, RunResult
from iotbpf.api.result import RESULT_VERSION, SimulationResult
from iotbpf.api.views import GlobalVariable, MapsView, MapView, decode, decode_key, encode

__all__ = ["Program", "RunResult", "Node", "SimulationResult", "compare", "Comparison", "MapView",
           "MapsView", "GlobalVariable", "duration_ns", "find_app", "build_app", "load_app_programs",
           "compile_c", "find_clang", "include_dir", "path_map_flags", "encode", "decode", "decode_key",
           "DEFAULT_SAMPLES", "RESULT_VERSION"]
