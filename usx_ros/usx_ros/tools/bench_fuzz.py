"""``usx bench fuzz``: random and mutated messages on every input of the product nodes.

The product nodes (probe_tracker, us_compounding with a sweep active, xray_ingest,
completion with ``auto_complete`` off so that only its input checks run, igtl_bridge on
a free port) run in this process on one executor; a fuzzer node publishes ``--messages``
messages from ``tools.fuzz`` on each input topic in turn. A callback that raises ends
the executor's thread: that is a crash, counted for the topic, and the graph is rebuilt.
Messages go one at a time (the next once a node has counted the last, or after 3 s):
result topics keep only their latest message. Per topic: messages sent, crashes,
messages the subscribing nodes counted as bad (``InputHealth`` rejections, summed over
the nodes that subscribe: two for bone points and probe poses) and as accepted, and
``uncounted``: messages no node counted within 3 s (lost, or ignored by design). Then
``--service-calls`` calls of the nodes' services in random order with random requests
(``tools.fuzz.SERVICES``): answered, succeeded, crashes per service. Memory:
this process's RSS before and after, and every 1,000 messages of each topic.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

NAME = "fuzz"
HELP = "random/mutated messages on every node input: crashes, counted rejects, memory"

#: Nodes of the phantom graph that take input (the phantom only publishes).
FUZZED_NODES = ("probe_tracker", "us_compounding", "xray_ingest", "completion", "igtl_bridge")
#: A memory sample every this many messages on a topic (``rss_mb_over_time``).
_RSS_EVERY = 1000
#: Through a parameter file, not ``-p``: a node's own section of the parameter file outranks
#: a command-line ``-p``, and config/phantom.yaml lists both keys. (With ``-p port:=0``
#: igtl_bridge took the fixed port; where another graph held it, it served nothing and
#: subscribed to nothing, and the completed spines went uncounted.)
_OVERRIDES = {"completion": {"auto_complete": False}, "igtl_bridge": {"port": 0}}


def add_arguments(parser) -> None:
    parser.add_argument("--messages", type=int, default=200, help="messages per topic")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--settle-s", type=float, default=2.0, help="quiet time per topic (s)")
    parser.add_argument(
        "--service-calls", type=int, default=200, help="random service calls, in all"
    )


class _Graph:
    def __init__(self) -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor

        from usx_ros.dds import configure_dds
        from usx_ros.graph import graph
        from usx_ros.tools.graph_watch import overlay_config
        from usx_ros.tools.launcher import spin_in_background

        configure_dds()
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context)
        self._tmp = tempfile.TemporaryDirectory(prefix="usx_bench_fuzz_")
        params = overlay_config(_OVERRIDES, Path(self._tmp.name) / "phantom.yaml")
        self.nodes = {}
        for d in graph("phantom"):
            if d.name in FUZZED_NODES:
                args = d.ros_args(params)
                self.nodes[d.name] = d.node_class()(context=self.context, cli_args=args)
        self.nodes["us_compounding"].start()  # frames then reach the sweep's checks
        self.fuzzer = rclpy.create_node("usx_fuzzer", context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        for n in [*self.nodes.values(), self.fuzzer]:
            self.executor.add_node(n)
        self.spinner = spin_in_background(self.executor)

    def counts(self) -> tuple[int, int]:
        acc = sum(n.health.accepted for n in self.nodes.values())
        bad = sum(n.health.dropped for n in self.nodes.values())
        return acc, bad

    def close(self) -> None:
        for n in self.nodes.values():
            close = getattr(n, "close", None)
            if close is not None:
                close()
        self.executor.shutdown()
        for n in [*self.nodes.values(), self.fuzzer]:
            n.destroy_node()
        self.context.try_shutdown()
        self._tmp.cleanup()


def _settle(graph: _Graph, quiet_s: float, deadline_s: float) -> None:
    """Wait until the counters have not moved for ``quiet_s`` (or the deadline)."""
    last, since = graph.counts(), time.monotonic()
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and graph.spinner.is_alive():
        time.sleep(0.05)
        now = graph.counts()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return


def run(args) -> dict:
    import psutil

    from usx_ros.qos import RESULT_QOS, SENSOR_QOS, STATE_QOS
    from usx_ros.tools.fuzz import TOPICS

    if args.messages < 1:
        raise ValueError(f"--messages: expected >= 1, got {args.messages}")
    if args.service_calls < 0:
        raise ValueError(f"--service-calls: expected >= 0, got {args.service_calls}")
    qos = {"/us/image": SENSOR_QOS, "/lbr/joint_states": STATE_QOS, "/usx/probe_pose": STATE_QOS}
    rng = np.random.default_rng(args.seed)
    proc = psutil.Process()
    graph = _Graph()
    rss0 = proc.memory_info().rss
    t0 = time.monotonic()
    series: list[list] = []  # [t_s, topic, messages sent on it so far, RSS MB]
    out: dict = {"messages_per_topic": args.messages, "crashes": 0, "topics": {}}
    try:
        for topic, (msg_type, make) in TOPICS.items():
            pub = graph.fuzzer.create_publisher(msg_type, topic, qos.get(topic, RESULT_QOS))
            deadline = time.monotonic() + 30.0
            while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            matched = pub.get_subscription_count()
            acc0, bad0 = graph.counts()
            silent = 0
            for i in range(args.messages):
                if i % _RSS_EVERY == 0:
                    series.append([round(time.monotonic() - t0, 1), topic, i, _mb(proc)])
                # one at a time: result topics keep only the latest message (depth 1)
                before = graph.counts()
                pub.publish(make(rng))
                end = time.monotonic() + 3.0
                while graph.counts() == before and time.monotonic() < end:
                    time.sleep(0.001)
                silent += graph.counts() == before
            _settle(graph, args.settle_s, 30.0)
            crashed = not graph.spinner.is_alive()
            acc1, bad1 = graph.counts()
            out["topics"][topic] = {
                "messages": args.messages,
                "crashes": int(crashed),
                "counted_bad": bad1 - bad0,
                "accepted": acc1 - acc0,
                "uncounted": silent,
                "subscribers": matched,
            }
            if crashed:
                out["crashes"] += 1
                graph.close()
                graph = _Graph()
            else:
                graph.fuzzer.destroy_publisher(pub)
    finally:
        rss1 = proc.memory_info().rss
        graph.close()
    out["services"] = _call_services(args.service_calls, rng) if args.service_calls else {}
    out["crashes"] += sum(v["crashes"] for v in out["services"].values())
    out["rss_mb_start"] = round(rss0 / 2**20, 1)
    out["rss_mb_end"] = round(rss1 / 2**20, 1)
    out["rss_mb_over_time"] = series
    return out


def _mb(proc) -> float:
    return round(proc.memory_info().rss / 2**20, 1)


def _call_services(n: int, rng: np.random.Generator) -> dict:
    """``n`` calls, each to a random service with a random request, on a fresh graph.

    Per service: calls, answers (within 30 s), ``success`` true/false, crashes (the
    executor's thread ended during the call: the graph is then rebuilt).
    """
    from usx_ros.tools.fuzz import SERVICES

    graph = _Graph()
    names = list(SERVICES)
    clients = {s: graph.fuzzer.create_client(t, s) for s, (t, _) in SERVICES.items()}
    stats = {s: {"calls": 0, "answered": 0, "succeeded": 0, "crashes": 0} for s in names}
    try:
        for c in clients.values():
            c.wait_for_service(timeout_sec=30.0)
        for _ in range(n):
            name = names[int(rng.integers(len(names)))]
            stats[name]["calls"] += 1
            future = clients[name].call_async(SERVICES[name][1](rng))
            end = time.monotonic() + 30.0
            while not future.done() and time.monotonic() < end and graph.spinner.is_alive():
                time.sleep(0.002)
            if future.done() and future.exception() is None:
                stats[name]["answered"] += 1
                stats[name]["succeeded"] += bool(future.result().success)
            if not graph.spinner.is_alive():
                stats[name]["crashes"] += 1
                graph.close()
                graph = _Graph()
                clients = {s: graph.fuzzer.create_client(t, s) for s, (t, _) in SERVICES.items()}
                for c in clients.values():
                    c.wait_for_service(timeout_sec=30.0)
    finally:
        graph.close()
    return stats
