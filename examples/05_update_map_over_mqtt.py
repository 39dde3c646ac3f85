"""Block a noisy radio source on a running node by sending it a signed map update over MQTT.

A node running the bundled rx_filter app (a C packet filter with a `blocklist` hash map)
connects to the broker and accepts signed commands on iotbpf/<node>/cmd. The operator side
signs a `map_update` (blocklist[66] = 1) with the node's key, publishes it and waits for the
node's acknowledgment on iotbpf/<node>/cmd/reply; a command signed with a wrong key is refused.
Then the node runs and its filter drops source 66's flood (2 h to 3 h into the run).

    python examples/05_update_map_over_mqtt.py --broker mqtt://127.0.0.1:1883
    python examples/05_update_map_over_mqtt.py --broker mqtt://user:pw@broker:1883 --quick
"""

import argparse
import os
import sys
import tempfile
import threading
import time

import iotbpf
from iotbpf.report.mqtt import MqttError, Publisher, send_command
from iotbpf.report.node import remote_control
from iotbpf.report.remote import generate_key

NOISY_SOURCE = 66  # rx_filter's simulated traffic: source 66 floods one packet a second from 2 h to 3 h


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://[user[:pw]@]host[:port]")
    parser.add_argument("--node-name", default="example-gw-%d" % os.getpid())
    parser.add_argument("--quick", action="store_true", help="simulate 4 hours afterwards instead of 1 day")
    parser.add_argument("--timeout", type=float, default=10, help="seconds to wait for the broker and replies")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="iotbpf-example-") as tmp:
        # ---- the node: rx_filter, its MQTT publisher, and the signed-command handler
        key_file = os.path.join(tmp, "node.key")
        key = generate_key(key_file)  # the operator keeps a copy of this key
        node = iotbpf.Node("rx_filter", seed=1)
        publisher = Publisher(args.broker, args.node_name, os.path.join(tmp, "outbox.db"), clock="real")
        handler = remote_control(node.build(), publisher, key_file, os.path.join(tmp, "counter.json"))
        publisher.start()
        if not publisher.wait_connected(args.timeout):
            print("cannot reach the MQTT broker at %s" % args.broker)
            return 1
        stop = threading.Event()

        def node_loop():  # a real node applies queued commands between its events
            while not stop.is_set():
                handler.process_pending()
                time.sleep(0.02)

        loop = threading.Thread(target=node_loop, daemon=True)
        loop.start()
        time.sleep(0.3)  # let the node's subscription to its command topic settle
        try:
            # ---- the operator: sign, publish, wait for the acknowledgment
            print("blocklist before: %s" % dict(node.maps["blocklist"]))
            reply = send_command(args.broker, args.node_name, key, "map_update", timeout=args.timeout,
                                 map="blocklist", key=NOISY_SOURCE, value=1)
            print("node acknowledged: ok=%s, reply %s" % (reply.get("ok"), reply))
            forged = send_command(args.broker, args.node_name, os.urandom(32), "map_update", timeout=args.timeout,
                                  map="blocklist", key=NOISY_SOURCE, value=0)
            print("a command signed with the wrong key: ok=%s, reason: %s" % (forged.get("ok"),
                                                                            forged.get("reason")))
            looked_up = send_command(args.broker, args.node_name, key, "map_lookup", timeout=args.timeout,
                                     map="blocklist", key=NOISY_SOURCE)
            print("map_lookup blocklist[%d] -> %s" % (NOISY_SOURCE, looked_up.get("result")))
        except MqttError as exc:
            print("MQTT: %s" % exc)
            return 1
        finally:
            stop.set()
            loop.join()
            publisher.close(timeout=5)
        assert reply.get("ok") is True and forged.get("ok") is False
        print("blocklist after:  %s" % dict(node.maps["blocklist"]))

        # ---- the node runs with the updated map
        result = node.simulate("4h" if args.quick else "1d")
        verdicts = dict(node.maps["verdicts"])
        print("after %s: %d packets passed, %d blocked (source %d), %d rate limited" % (
            "4 hours" if args.quick else "1 day", verdicts[0], verdicts[1], NOISY_SOURCE, verdicts[2]))
        print("radio: %s" % result.summary["radio"]["rx"])
        assert verdicts[1] > 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
