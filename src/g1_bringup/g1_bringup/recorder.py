"""Recorder node: writes a rosbag2 directory (metadata.yaml + .mcap) of the tracking topics.

Messages are taken raw from the subscriptions (exact CDR bytes, no re-serialisation) and written by
rosbags, so the bag is readable by ``ros2 bag`` on a distro install and by ``rosbags`` anywhere.
Each message is logged at its header stamp (the control tick), so bags of lockstep runs are
deterministic. The writer runs in its own thread: subscription callbacks only enqueue bytes.

The recorder is one of the simulator's readiness peers (lockstep, and real time under `g1 track`): it
says ready on ``g1/ready`` only when every recorded topic has a matched publisher, so nothing of the first
tick is lost.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import StoragePlugin, Writer
from std_msgs.msg import String

from g1_common import shutdown, topics
from g1_common.ticks import cdr_header_stamp_ns

from . import typesys

#: topic -> message class path. The default set: everything the evaluator and a replay need.
DEFAULT_TOPICS: dict[str, str] = {
    topics.REFERENCE_WINDOW: "g1_interfaces.msg.ReferenceWindow",
    topics.JOINT_STATES: "sensor_msgs.msg.JointState",
    topics.IMU: "sensor_msgs.msg.Imu",
    topics.JOINT_COMMAND: "g1_interfaces.msg.JointCommand",
    topics.TRACKING_STATUS: "g1_interfaces.msg.TrackingStatus",
    topics.GROUND_TRUTH_ODOM: "nav_msgs.msg.Odometry",
    topics.GROUND_TRUTH_KEY_BODIES: "g1_interfaces.msg.KeyBodyPositions",
}
#: what the ``topics`` parameter may name: the defaults and the leg odometry (graphs that run it)
KNOWN_TOPICS: dict[str, str] = {**DEFAULT_TOPICS, topics.LEG_ODOM: "nav_msgs.msg.Odometry"}

# Reliable and deep on the reader side: a recorder must not lose a sample when it falls behind.
RECORD_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                        reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


def _import_class(path: str):
    module, name = path.rsplit(".", 1)
    return getattr(__import__(module, fromlist=[name]), name)


class BagRecorder:
    """Plain writer side: open a rosbag2 MCAP directory, write raw CDR messages, close cleanly."""

    def __init__(self, path: Path, topic_types: dict[str, str]):
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists; rosbag2 writes a new directory (choose another --out)")
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        store = typesys.typestore()
        self._connections = {}
        for topic, class_path in topic_types.items():
            type_name = typesys.ros_type_name(_import_class(class_path))
            self._connections[topic] = self._writer.add_connection(
                "/" + topic.lstrip("/"), type_name, typestore=store)
        self.counts = {t: 0 for t in topic_types}

    def write(self, topic: str, cdr: bytes, fallback_ns: int) -> None:
        stamp = cdr_header_stamp_ns(cdr)
        self._writer.write(self._connections[topic], stamp if stamp is not None else fallback_ns, cdr)
        self.counts[topic] += 1

    def close(self) -> None:
        self._writer.close()


class RecorderNode(Node):
    def __init__(self):
        super().__init__("g1_recorder")
        self.declare_parameter("output", "")
        self.declare_parameter("topics", list(DEFAULT_TOPICS))
        self.declare_parameter("announce_ready", True)
        output = self.get_parameter("output").value
        if not output:
            raise ValueError("parameter 'output' (the bag directory to create) is required")
        wanted = list(self.get_parameter("topics").value)
        unknown = [t for t in wanted if t not in KNOWN_TOPICS]
        if unknown:
            raise ValueError(f"cannot record {unknown}: known topics are {list(KNOWN_TOPICS)}")
        self._bag = BagRecorder(Path(output), {t: KNOWN_TOPICS[t] for t in wanted})
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.received = 0
        self._subs = [self.create_subscription(_import_class(KNOWN_TOPICS[t]), t,
                                               lambda data, t=t: self._enqueue(t, data), RECORD_QOS, raw=True)
                      for t in wanted]
        self._ready_pub = self.create_publisher(String, topics.READY, topics.LATCHED_QOS)
        self._announced = not self.get_parameter("announce_ready").value
        self._ready_timer = self.create_timer(0.05, self._check_ready, clock=rclpy.clock.Clock())
        self._thread = threading.Thread(target=self._drain, name="bag-writer", daemon=True)
        self._thread.start()
        self.get_logger().info(f"recording {len(wanted)} topics to {output}")

    def _enqueue(self, topic: str, data: bytes) -> None:
        self.received += 1
        self._queue.put((topic, data))

    def _check_ready(self):
        if self._announced:
            return
        if all(s.get_publisher_count() > 0 for s in self._subs):
            self._ready_pub.publish(String(data=self.get_name()))
            self._announced = True
            self.get_logger().info("all recorded topics matched: ready")

    def _drain(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            topic, data = item
            self._bag.write(topic, data, self.get_clock().now().nanoseconds)

    def close(self) -> dict[str, int]:
        """Flush the queue and write metadata.yaml. Safe to call once at shutdown."""
        self._queue.put(None)
        self._thread.join()
        self._bag.close()
        return self._bag.counts


def main(args=None) -> int:
    # SIGINT/SIGTERM end the recording, but only after what DDS already delivered to us is in the bag
    # (the context stays valid, g1_common.shutdown): samples still in the reader queues, e.g. the last
    # tick's command of a run whose publishers just stopped, would be lost and identical runs could differ.
    shutdown.init(args)
    node = None
    try:
        node = RecorderNode()
        # EventsExecutor in a spin_once loop: far less overhead per message than the wait-set executors
        # (its plain spin() busy-loops here, see the shared ROS notes), which matters at 8 topics x 50 Hz
        # x the lockstep speed-up.
        from rclpy.experimental import EventsExecutor

        executor = EventsExecutor()
        executor.add_node(node)
        shutdown.spin(executor)
        # drain: take what is still queued until nothing new arrives for 0.3 s (at most 1 s: a live graph
        # that keeps publishing, e.g. `g1 record` stopped with Ctrl-C, never goes quiet)
        end, last, quiet_since = time.monotonic() + 1.0, node.received, time.monotonic()
        while rclpy.ok() and time.monotonic() < end and time.monotonic() - quiet_since < 0.3:
            executor.spin_once(timeout_sec=0.05)
            if node.received != last:
                last, quiet_since = node.received, time.monotonic()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, FileExistsError) as exc:
        print(f"g1_recorder: {exc}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            counts = node.close()  # always close: metadata.yaml is written here
            print("g1_recorder: wrote " + ", ".join(f"{t}: {n}" for t, n in counts.items()), file=sys.stderr)
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
