"""Structuring a reducible graph into nested while/if/break/continue (Ramsey's "Beyond Relooper",
adapted to Python) and rendering it; StructureError sends the compiler to its state machine."""

from iotbpf.ebpf.isa.cfg import Graph


class StructureError(Exception):
    """The graph is irreducible, or too deeply nested to express as Python statements."""


# ------------------------------------------------------------------ structuring
# The structured tree (before lowering) uses these tuples:
#   ("code", n)                emit node n's straight-line code (and its return if terminal)
#   ("if", n, then, else_)     n ends in a two-way branch: then = first successor's path
#   ("loop", x, body)          loop headed by x
#   ("block", y, body)         a region that a branch to y leaves; y's code follows it
#   ("label", y)               marks where y's code starts (no code of its own)
#   ("br", y)                  transfer control to y
# lower() turns it into Python-shaped statements:
#   ("code", n), ("if", n, then, else_), ("while", body), ("break",), ("continue",),
#   ("setj", k) (then a break: a multi-level exit in flight), ("checkj", cases, propagate)
#   after an inner while: cases = [(k, "break"|"continue")] for exits aimed at the enclosing
#   while, propagate = True if some exit in flight must leave the enclosing while as well.

MAX_DEPTH = 100  # structuring recursion (Python stacks are small, MicroPython's smaller)


def structure(succs, entry=0, graph=None):
    """Structured tree for the graph, or StructureError if it is irreducible."""
    g = graph if graph is not None else Graph(succs, entry)
    if not g.reducible:
        raise StructureError("irreducible control flow")
    placed = set()
    for n in g.rpo:
        if g.forward_in_degree(n) >= 2:
            placed.add(n)
    outside = {}
    for header, body in g.loops.items():
        outs = [c for c in g.children[header] if c not in body]
        outside[header] = outs
        placed.update(outs)

    def branch(source, target, depth):
        if g.is_backward(source, target) or target in placed:
            return [("br", target)]
        out = []
        do_tree(target, out, depth + 1)
        return out

    def node_code(x, depth):
        out = [("code", x)]
        s = succs[x]
        if len(s) == 1:
            out.extend(branch(x, s[0], depth))
        elif len(s) == 2:
            out.append(("if", x, branch(x, s[0], depth), branch(x, s[1], depth)))
        elif len(s) > 2:
            raise StructureError("node %d has %d successors" % (x, len(s)))
        return out

    def within(x, merges, depth):
        # merges: sorted by rpo, innermost (lowest) first; the highest is the outermost block.
        depth += len(merges)
        inner = node_code(x, depth)
        for y in merges:
            inner = [("block", y, inner), ("label", y)] + _tree_list(y, depth)
        return inner

    def _tree_list(y, depth):
        out = []
        do_tree(y, out, depth + 1)
        return out

    def do_tree(x, out, depth):
        # Appends the code for the dominator subtree of x; the last merge child is a tail
        # position, handled by the loop rather than by recursion (long chains stay shallow).
        while True:
            if depth > MAX_DEPTH:
                raise StructureError("control flow nested too deeply")
            kids = g.children[x]
            if x in g.loops:
                body_nodes = g.loops[x]
                inner = [c for c in kids if c in placed and c in body_nodes]
                outs = outside[x]
                loop = ("loop", x, within(x, inner, depth))
                if not outs:
                    out.append(loop)
                    return
                # The loop's own `break` reaches the first child outside it; later ones are
                # reached through enclosing blocks, the last one as this subtree's tail.
                last = outs[-1]
                if len(outs) == 1:
                    out.append(loop)
                else:
                    seq = [loop, ("label", outs[0])] + _tree_list(outs[0], depth)
                    for y in outs[1:-1]:
                        seq = [("block", y, seq), ("label", y)] + _tree_list(y, depth)
                    out.append(("block", last, seq))
                out.append(("label", last))
                x = last
                continue
            merges = [c for c in kids if c in placed]
            if not merges:
                s = succs[x]
                if len(s) == 1 and not g.is_backward(x, s[0]) and s[0] not in placed:
                    out.append(("code", x))  # straight-line fall-through: a tail, no recursion
                    x = s[0]
                    continue
                out.extend(node_code(x, depth))
                return
            inner = within(x, merges[:-1], depth)
            last = merges[-1]
            out.append(("block", last, inner))
            out.append(("label", last))
            x = last

    tree = []
    do_tree(entry, tree, 0)
    if tree_depth(tree) > MAX_DEPTH:
        raise StructureError("control flow nested too deeply")
    return tree


def tree_depth(tree):
    """Deepest nesting of a structured tree (iteratively, so any depth can be measured)."""
    best = 0
    work = [(tree, 1)]
    while work:
        seq, depth = work.pop()
        if depth > best:
            best = depth
        for item in seq:
            kind = item[0]
            if kind == "if":
                work.append((item[2], depth + 1))
                work.append((item[3], depth + 1))
            elif kind == "loop" or kind == "block":
                work.append((item[2], depth + 1))
    return best


# ------------------------------------------------------------------ lowering
class _While:
    __slots__ = ("cont", "after", "exits", "ident")

    def __init__(self, cont, after, ident):
        self.cont = cont  # the loop header a `continue` reaches, or None for a block
        self.after = after  # the label whose code follows the while, or None
        self.exits = {}  # multi-level exits passing through: k -> (target _While, action)
        self.ident = ident


def lower(tree, terminal=()):
    """Turn a structured tree into Python-shaped statements (see the table above).

    ``terminal`` is the set of nodes whose code ends in a return/raise of its own; it lets
    the lowering leave out statements that can never run.
    """
    state = {"whiles": 0, "jumps": {}}
    return _lower_seq(tree, None, [], state, terminal)


def _ends(stmts, terminal):
    """True if control can never fall off the end of ``stmts``."""
    if not stmts:
        return False
    last = stmts[-1]
    kind = last[0]
    if kind in ("break", "continue"):
        return True
    if kind == "code":
        return last[1] in terminal
    if kind == "if":
        return _ends(last[2], terminal) and _ends(last[3], terminal)
    return False


def _needs_wrap(y, body):
    """A block must stay a `while` unless every branch to y is at its end (or in a last loop)."""
    total = _count_br(y, body)
    return total != _count_tail_br(y, body)


def _count_br(y, seq):
    n = 0
    for item in seq:
        kind = item[0]
        if kind == "br":
            n += item[1] == y
        elif kind == "if":
            n += _count_br(y, item[2]) + _count_br(y, item[3])
        elif kind in ("loop", "block"):
            n += _count_br(y, item[2])
    return n


def _count_tail_br(y, seq):
    if not seq:
        return 0
    last = seq[-1]
    kind = last[0]
    if kind == "br":
        return 1 if last[1] == y else 0
    if kind == "if":
        return _count_tail_br(y, last[2]) + _count_tail_br(y, last[3])
    if kind == "loop":
        return _count_br(y, last[2])
    return 0


def _lower_seq(seq, ft, stack, state, terminal):
    out = []
    last = len(seq) - 1
    for i, item in enumerate(seq):
        kind = item[0]
        if kind == "label":
            continue
        if i == last:
            item_ft = ft
        else:
            nxt = seq[i + 1]
            item_ft = nxt[1] if nxt[0] == "label" else None
        if kind == "code":
            out.append(item)
        elif kind == "br":
            out.extend(_lower_br(item[1], item_ft, stack, state))
        elif kind == "if":
            then = _lower_seq(item[2], item_ft, stack, state, terminal)
            else_ = _lower_seq(item[3], item_ft, stack, state, terminal)
            out.append(("if", item[1], then, else_))
        elif kind == "loop":
            w = _new_while(item[1], item_ft, state)
            body = _lower_seq(item[2], item[1], stack + [w], state, terminal)
            out.append(("while", body))
            out.extend(_check_exits(w, stack))
        elif kind == "block":
            y = item[1]
            if _needs_wrap(y, item[2]):
                w = _new_while(None, y, state)
                body = _lower_seq(item[2], None, stack + [w], state, terminal)
                if not _ends(body, terminal):
                    body.append(("break",))
                out.append(("while", body))
                out.extend(_check_exits(w, stack))
            else:
                out.extend(_lower_seq(item[2], y, stack, state, terminal))
        else:
            raise StructureError("unknown tree item " + repr(kind))
    return out


def _new_while(cont, after, state):
    state["whiles"] += 1
    return _While(cont, after, state["whiles"])


def _lower_br(y, ft, stack, state):
    if ft == y:
        return []
    depth = len(stack)
    for i in range(depth - 1, -1, -1):
        w = stack[i]
        if w.cont == y:
            action = "continue"
        elif w.after == y:
            action = "break"
        else:
            continue
        if i == depth - 1:
            return [(action,)]
        key = (w.ident, action)
        k = state["jumps"].get(key)
        if k is None:
            k = len(state["jumps"]) + 1
            state["jumps"][key] = k
        for m in range(i + 1, depth):
            stack[m].exits[k] = (w, action)
        return [("setj", k), ("break",)]
    raise StructureError("no enclosing construct reaches node %r" % (y,))


def _check_exits(w, stack):
    """The statements after while ``w`` that continue multi-level exits passing through it."""
    if not w.exits:
        return []
    parent = stack[-1] if stack else None
    cases = []
    propagate = False
    for k in sorted(w.exits):
        target, action = w.exits[k]
        if target is parent:
            cases.append((k, action))
        else:
            propagate = True
    return [("checkj", cases, propagate)]


# Python's own limits: CPython refuses more than 20 statically nested loops and 100
# indentation levels; MicroPython's parser is recursive. Stay well inside both.
MAX_INDENT = 60
MAX_LOOPS = 16


def render(stmts, code_lines, cond_text, terminal, indent=1, jvar="_j"):
    """Python source lines for lowered statements.

    ``code_lines(n)`` gives the lines of node n's code (without indentation), ``cond_text(n)``
    the expression that is true when n's branch goes to its first successor. An ``if`` whose
    arm always leaves is written without ``else`` so long if-chains stay flat. Raises
    StructureError beyond MAX_INDENT / MAX_LOOPS.
    """
    out = []
    _render(stmts, code_lines, cond_text, terminal, indent, 0, jvar, out)
    return out


def _render(stmts, code_lines, cond_text, terminal, indent, loops, jvar, out):
    if indent > MAX_INDENT or loops > MAX_LOOPS:
        raise StructureError("control flow nested too deeply for Python")
    pad = "    " * indent
    for item in stmts:
        kind = item[0]
        if kind == "code":
            for line in code_lines(item[1]):
                out.append(pad + line)
        elif kind == "if":
            then, else_ = item[2], item[3]
            if not then and not else_:
                continue
            cond = cond_text(item[1])
            args = (code_lines, cond_text, terminal, indent + 1, loops, jvar, out)
            if not then:
                out.append(pad + "if not (" + cond + "):")
                _render(else_, *args)
            elif not else_ or _ends(then, terminal):
                out.append(pad + "if " + cond + ":")
                _render(then, *args)
                _render(else_, code_lines, cond_text, terminal, indent, loops, jvar, out)
            elif _ends(else_, terminal):
                out.append(pad + "if not (" + cond + "):")
                _render(else_, *args)
                _render(then, code_lines, cond_text, terminal, indent, loops, jvar, out)
            else:
                out.append(pad + "if " + cond + ":")
                _render(then, *args)
                out.append(pad + "else:")
                _render(else_, *args)
        elif kind == "while":
            out.append(pad + "while True:")
            _render(item[1], code_lines, cond_text, terminal, indent + 1, loops + 1, jvar, out)
        elif kind == "break" or kind == "continue":
            out.append(pad + kind)
        elif kind == "setj":
            out.append(pad + "%s = %d" % (jvar, item[1]))
        elif kind == "checkj":
            out.append(pad + "if %s:" % jvar)
            inner = pad + "    "
            for k, action in item[1]:
                out.append(inner + "if %s == %d:" % (jvar, k))
                out.append(inner + "    %s = 0" % jvar)
                out.append(inner + "    " + action)
            if item[2]:
                out.append(inner + "break")
        else:
            raise StructureError("unknown statement " + repr(kind))


def uses_jumps(stmts):
    """True if the lowered statements need the multi-level exit variable."""
    for item in stmts:
        kind = item[0]
        if kind == "setj":
            return True
        if kind == "if" and (uses_jumps(item[2]) or uses_jumps(item[3])):
            return True
        if kind == "while" and uses_jumps(item[1]):
            return True
    return False
