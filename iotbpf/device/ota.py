"""Over-the-air program updates on the device (MicroPython): a newer signed image of the same app with
the same map layouts, a persisted counter against replays, and a rollback after repeated faults
(docs/mcu.md, "Over-the-air updates").
"""

import json
import os

from iotbpf.device import image

ROLLBACK_FAULTS = 3
UPDATE_FILE = "update.dimg"


def _counter_path(node):
    return node.pin_dir + "/ota.json"


def last_counter(node):
    if not node.pin_dir:
        return node.image.get("counter", 0)
    try:
        with open(_counter_path(node)) as f:
            return max(json.loads(f.read())["counter"], node.image.get("counter", 0))
    except (OSError, ValueError, KeyError, TypeError):
        return node.image.get("counter", 0)


def _layout(img):
    return [m[:5] for m in img["maps"]]


def apply(node, data, app_dir=None):
    """Check and apply image bytes ``data``; the reply dict (``ok``, ``reason``) is also published."""
    reply = {"op": "program_update", "ok": False, "reason": None}
    try:
        new = image.parse(data, node.key)
        if new.get("app") != node.name:
            raise image.ImageError("image of app %r, this node runs %r" % (new.get("app"), node.name))
        counter = new.get("counter", 0)
        if counter <= last_counter(node):
            raise image.ImageError("replayed or old image: counter %d <= %d" % (counter, last_counter(node)))
        if _layout(new) != _layout(node.image):
            raise image.ImageError("map layouts differ: an update replaces programs, never maps")
        current = {}
        for hook, progs in node.progs.items():
            for p in progs:
                current[(hook, p.section)] = p
        for hook, section, _code, _budget in new["progs"]:
            if (hook, section) not in current:
                raise image.ImageError("program %s on %s is not attached by this app" % (section, hook))
    except image.ImageError as exc:
        reply["reason"] = str(exc)
        node.sink.publish("iotbpf/%s/cmd/reply" % node.name, reply)
        return reply
    if node.pin_dir:
        path = _counter_path(node)
        with open(path + ".tmp", "w") as f:
            f.write(json.dumps({"counter": counter}))
        os.rename(path + ".tmp", path)
    changed = []
    for hook, section, code, budget in new["progs"]:
        p = current[(hook, section)]
        if p.code != code or p.budget != budget:
            p.previous = (p.code, p.budget, p.faults)
            p.code = code
            p.budget = budget
            p.recent = []
            p.detached = False
            changed.append(section)
    node.image["progs"] = new["progs"]
    node.image["counter"] = counter
    if app_dir is not None:  # the new image boots next time; the old one stays for a rollback
        path = app_dir + "/app.dimg"
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        try:
            os.rename(path, app_dir + "/app.prev.dimg")
        except OSError:
            pass
        os.rename(path + ".tmp", path)
    reply["ok"] = True
    reply["result"] = {"counter": counter, "sections": changed}
    node.sink.publish("iotbpf/%s/cmd/reply" % node.name, reply)
    return reply


def check_rollback(node, hook, p, now):
    """After a fault of updated program ``p``: roll back once it faulted ROLLBACK_FAULTS times."""
    faults = p.faults - p.previous[2]
    if faults < ROLLBACK_FAULTS:
        return False
    p.code, p.budget = p.previous[0], p.previous[1]
    p.previous = None
    if node.app_dir is not None:
        try:
            os.rename(node.app_dir + "/app.prev.dimg", node.app_dir + "/app.dimg")
        except OSError:
            pass
    p.recent = []
    p.detached = False
    node.sink.publish("iotbpf/%s/faults" % node.name, {
        "t_ns": now, "event": "rollback", "hook": hook, "section": p.section, "faults": faults,
        "reason": "new program faulted %d times; previous program restored" % faults})
    return True


def poll(node, app_dir):
    """Apply ``app_dir``/update.dimg if one was copied there (``iotbpf deploy --update``), then remove it."""
    path = app_dir + "/" + UPDATE_FILE
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    os.remove(path)
    return apply(node, data, app_dir)
