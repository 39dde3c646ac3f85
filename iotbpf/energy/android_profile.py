"""Importer for Android's power_profile.xml: parse it and build a phone's component energy models.

Accepts both key generations: old ``cpu.awake`` (= new ``cpu.idle``) and old ``cpu.idle`` (= new
``cpu.suspend``), ``cpu.active``, ``cpu.cluster_power.clusterN``, ``screen.on``/``screen.full``
with or without ``.display0``. Values in the file are mA at the battery's nominal voltage
(AOSP "Power profiles for Android", source.android.com/docs/core/power/values), so the models
state currents and that voltage. A tiny hand-written XML reader keeps this MicroPython-compatible;
it must never evaluate anything from the file.
"""

from iotbpf.energy.errors import ModelError

AOSP_DOC = ("AOSP 'Power profiles for Android' (source.android.com/docs/core/power/values): "
            "power_profile.xml item values in mA at nominal battery voltage")
NOMINAL_V = 3.85
NOMINAL_V_SOURCE = ("Nominal voltage of a Li-ion polymer phone cell, 3.85 V (e.g. Xiaomi Mi 9T Pro "
                    "battery BP41 label, 4000 mAh 3.85 V)")
MAX_TEXT = 1 << 20
MAX_ITEMS = 4096


def _attr(tag, name):
    key = name + '="'
    i = tag.find(key)
    if i < 0:
        return None
    j = tag.find('"', i + len(key))
    if j < 0:
        raise ModelError("power_profile: unterminated attribute in %r" % tag[:60])
    return tag[i + len(key):j]


def _number(text, name):
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        raise ModelError("power_profile: %s: not a number: %r" % (name, text[:40])) from None
    if value != value or value - value != 0.0:
        raise ModelError("power_profile: %s: not a finite number: %r" % (name, text[:40]))
    return value


def read_items(xml_text):
    """{name: float or list of floats} for every <item> and <array> of a power_profile.xml."""
    if len(xml_text) > MAX_TEXT:
        raise ModelError("power_profile: file larger than %d bytes" % MAX_TEXT)
    out = {}
    pos = 0
    n = len(xml_text)
    while pos < n:
        lt = xml_text.find("<", pos)
        if lt < 0:
            break
        if xml_text[lt:lt + 4] == "<!--":  # a comment may hold example <array> tags: skip it
            end = xml_text.find("-->", lt + 4)
            if end < 0:
                raise ModelError("power_profile: unterminated comment at offset %d" % lt)
            pos = end + 3
            continue
        gt = xml_text.find(">", lt)
        if gt < 0:
            raise ModelError("power_profile: unterminated tag at offset %d" % lt)
        tag = xml_text[lt + 1:gt]
        pos = gt + 1
        if tag.startswith("item") and tag[4:5] in (" ", "\t", "\n"):
            name = _attr(tag, "name")
            end = xml_text.find("</item>", pos)
            if name is None or end < 0:
                raise ModelError("power_profile: malformed <item> at offset %d" % lt)
            out[name] = _number(xml_text[pos:end], name)
            pos = end + 7
        elif tag.startswith("array") and tag[5:6] in (" ", "\t", "\n"):
            name = _attr(tag, "name")
            if name is None:
                raise ModelError("power_profile: <array> without a name at offset %d" % lt)
            values = []
            if not tag.rstrip().endswith("/"):
                end = xml_text.find("</array>", pos)
                if end < 0:
                    raise ModelError("power_profile: unterminated <array name=%r>" % name)
                body = xml_text[pos:end]
                k = 0
                while True:
                    a = body.find("<value>", k)
                    if a < 0:
                        break
                    b = body.find("</value>", a)
                    if b < 0:
                        raise ModelError("power_profile: unterminated <value> in %s" % name)
                    values.append(_number(body[a + 7:b], name))
                    k = b + 8
                pos = end + 8
            out[name] = values
        if len(out) > MAX_ITEMS:
            raise ModelError("power_profile: more than %d entries" % MAX_ITEMS)
    if not out:
        raise ModelError("power_profile: no <item> or <array> entries found")
    return out


def _first(items, names, default=0.0):
    for name in names:
        if name in items:
            value = items[name]
            if isinstance(value, list):
                return value[0] if value else default
            return value
    return default


def parse_power_profile(xml_text):
    """Parse a power_profile.xml (either key generation) into a plain dict of mA figures.

    Keys: battery_mah, clusters [{cores, speeds_khz, core_ma, cluster_ma}], suspend_ma,
    idle_ma (CPU awake, no core running), active_ma, screen_on_ma, screen_full_ma, wifi_on_ma,
    wifi_active_ma, wifi_scan_ma, radio_active_ma, radio_scanning_ma, radio_on_ma (list),
    bluetooth_on_ma, bluetooth_active_ma, gps_on_ma, naming ("old" or "new"), raw.
    """
    items = read_items(xml_text)
    # Android <= 7 named the awake current cpu.awake and the suspended one cpu.idle; from 8 on
    # they are cpu.idle and cpu.suspend. Only a file with cpu.awake uses the old meaning.
    new = "cpu.awake" not in items
    if new:
        suspend = _first(items, ("cpu.suspend",))
        idle = _first(items, ("cpu.idle",))
    else:
        suspend = _first(items, ("cpu.idle",))
        idle = _first(items, ("cpu.awake",))
    cores = items.get("cpu.clusters.cores") or items.get("cpu.clusters.cores.") or [1.0]
    if not isinstance(cores, list):
        cores = [cores]
    clusters = []
    for i, count in enumerate(cores):
        speeds = items.get("cpu.core_speeds.cluster%d" % i, items.get("cpu.speeds.cluster%d" % i, []))
        power = items.get("cpu.core_power.cluster%d" % i, items.get("cpu.active.cluster%d" % i, []))
        if not isinstance(speeds, list) or not isinstance(power, list) or len(speeds) != len(power):
            raise ModelError("power_profile: cluster %d has %s speeds but %s powers"
                             % (i, len(speeds) if isinstance(speeds, list) else "?",
                                len(power) if isinstance(power, list) else "?"))
        clusters.append({"cores": int(count), "speeds_khz": [int(s) for s in speeds],
                         "core_ma": list(power),
                         "cluster_ma": _first(items, ("cpu.cluster_power.cluster%d" % i,))})
    radio_on = items.get("radio.on", [])
    if not isinstance(radio_on, list):
        radio_on = [radio_on]
    return {
        "naming": "new" if new else "old",
        "battery_mah": _first(items, ("battery.capacity",)),
        "clusters": clusters,
        "suspend_ma": suspend,
        "idle_ma": idle,
        "active_ma": _first(items, ("cpu.active",)),
        "screen_on_ma": _first(items, ("screen.on", "screen.on.display0")),
        "screen_full_ma": _first(items, ("screen.full", "screen.full.display0")),
        "wifi_on_ma": _first(items, ("wifi.on",)),
        "wifi_active_ma": _first(items, ("wifi.active",)),
        "wifi_scan_ma": _first(items, ("wifi.scan",)),
        "radio_active_ma": _first(items, ("radio.active",)),
        "radio_scanning_ma": _first(items, ("radio.scanning",)),
        "radio_on_ma": list(radio_on),
        "bluetooth_on_ma": _first(items, ("bluetooth.on",)),
        "bluetooth_active_ma": _first(items, ("bluetooth.active",)),
        "gps_on_ma": _first(items, ("gps.on",)),
        "camera_ma": _first(items, ("camera.avg",)),
        "flashlight_ma": _first(items, ("camera.flashlight",)),
        "audio_ma": _first(items, ("audio", "dsp.audio")),
        "video_ma": _first(items, ("video", "dsp.video")),
        "raw": items,
    }


COMPONENTS = ("cpu", "screen", "wifi", "cell", "bluetooth", "gps", "camera", "audio")
BRIGHTNESS_BINS = 5  # BatteryStats.NUM_SCREEN_BRIGHTNESS_BINS


def cluster_state(cluster, khz):
    """The cpu model's state name for one core of ``cluster`` busy at ``khz``."""
    return "c%d_%dk" % (cluster, khz)


def core_ma(profile, cluster, step):
    """mA one busy core of ``cluster`` at speed ``step`` adds (BatteryStats' CPU formula: cpu.active
    + cpu.cluster_power.clusterN + cpu.core_power.clusterN[step])."""
    c = profile["clusters"][cluster]
    powers = c["core_ma"]
    core = powers[min(step, len(powers) - 1)] if powers else 0.0
    return profile["active_ma"] + c["cluster_ma"] + core


def brightness_ma(profile, level):
    """Screen mA in brightness bin ``level`` (0-4): screen.on + screen.full x (level + 0.5) / 5."""
    return profile["screen_on_ma"] + profile["screen_full_ma"] * (level + 0.5) / BRIGHTNESS_BINS


def phone_models(profile, name="phone", voltage_v=NOMINAL_V):
    """Energy-model dicts (schema version 1) for each phone component, keyed by component name.

    CPU states: ``suspend``, ``idle`` (awake, no core running), and one ``run@<MHz>`` per
    operating point of the fastest cluster with all its cores busy: cores x core power, plus
    the cluster and active power where the profile gives them (the BatteryStats CPU formula).
    """
    src = {"pp": AOSP_DOC + " [file: %s]" % name, "v": NOMINAL_V_SOURCE}
    base = {"version": 1, "voltage_v": voltage_v, "sources": src}

    def model(comp, kind, states, default, **extra):
        d = dict(base)
        d.update({"name": "%s_%s" % (name, comp), "kind": kind, "states": states, "default_state": default})
        d.update(extra)
        return d

    def st(ma):
        return {"current_ma": ma, "source": "pp"}

    out = {}
    clusters = profile["clusters"]
    big = clusters[-1] if clusters else {"cores": 1, "speeds_khz": [], "core_ma": [], "cluster_ma": 0.0}
    freqs = []
    for khz, ma in zip(big["speeds_khz"], big["core_ma"]):
        total = ma * big["cores"] + big["cluster_ma"] + profile["active_ma"]
        freqs.append({"hz": khz * 1000, "current_ma": total, "source": "pp"})
    max_hz = max([f["hz"] for f in freqs]) if freqs else 1000000000
    cpu_states = {"suspend": st(profile["suspend_ma"]), "idle": st(profile["idle_ma"])}
    for i, cluster in enumerate(clusters):
        for step, khz in enumerate(cluster["speeds_khz"]):
            cpu_states[cluster_state(i, khz)] = st(core_ma(profile, i, step))
    out["cpu"] = model("cpu", "cpu", cpu_states, "suspend", frequencies=freqs,
                       params={"clock_hz": max_hz, "cores": big["cores"],
                               "source": "pp"})
    screen_full = profile["screen_on_ma"] + profile["screen_full_ma"]
    screen = {"off": st(0.0), "on": st(profile["screen_on_ma"]), "full": st(screen_full)}
    for level in range(BRIGHTNESS_BINS):
        screen["bright%d" % level] = st(brightness_ma(profile, level))
    out["screen"] = model("screen", "display", screen, "off")
    out["wifi"] = model("wifi", "radio", {"off": st(0.0), "sleep": st(profile["wifi_on_ma"]),
                                          "rx": st(profile["wifi_active_ma"]),
                                          "tx": st(profile["wifi_active_ma"]),
                                          "active": st(profile["wifi_active_ma"]),
                                          "scan": st(profile["wifi_scan_ma"])}, "sleep")
    on = profile["radio_on_ma"]
    out["cell"] = model("cell", "radio", {"off": st(0.0), "sleep": st(on[0] if on else 0.0),
                                          "rx": st(profile["radio_active_ma"]),
                                          "tx": st(profile["radio_active_ma"]),
                                          "active": st(profile["radio_active_ma"]),
                                          "scan": st(profile["radio_scanning_ma"])}, "sleep")
    out["bluetooth"] = model("bluetooth", "radio", {"off": st(0.0), "sleep": st(profile["bluetooth_on_ma"]),
                                                    "rx": st(profile["bluetooth_active_ma"]),
                                                    "tx": st(profile["bluetooth_active_ma"])}, "sleep")
    out["gps"] = model("gps", "gps", {"off": st(0.0), "on": st(profile["gps_on_ma"])}, "off")
    out["camera"] = model("camera", "camera", {"off": st(0.0), "on": st(profile["camera_ma"]),
                                               "flashlight": st(profile["flashlight_ma"])}, "off")
    out["audio"] = model("audio", "other", {"off": st(0.0), "on": st(profile["audio_ma"]),
                                            "video": st(profile["video_ma"])}, "off")
    return out


def phone_model(profile, name="phone", component="cpu"):
    """One component's model dict (see phone_models)."""
    models = phone_models(profile, name)
    if component not in models:
        raise ModelError("phone component %r unknown (known: %s)" % (component, ", ".join(COMPONENTS)))
    return models[component]
