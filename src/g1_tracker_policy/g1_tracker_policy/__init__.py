"""G1 tracking policy: observation builder, policy artifact contract, controllers, safety state machine
and the ``g1_policy`` node. Only ``node`` (and the feeder in ``testing``) import ROS; training imports
``observation`` and ``contract`` directly."""
