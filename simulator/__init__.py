"""The factory simulator: simulated plants that degrade, fail and get repaired, and dataset replay.

Public surface (everything else is private to the package):

* :class:`simulator.engine.Plant` - the deterministic engine (``run(hours)`` yields messages in
  time order; ``apply_maintenance(machine, kind, at)`` is the maintenance hook; ``truth`` is the
  ground truth of failures and maintenance).
* :func:`simulator.engine.simulate_history` / :func:`simulator.engine.run_history` - in-process
  history for backtests and demos (messages, plus ground truth).
* :func:`simulator.replay.replay_registry`, :func:`simulator.replay.cmapss_messages`,
  :func:`simulator.replay.ai4i_messages` - public datasets as machines.
* :class:`simulator.mqtt.MqttPublisher`, :func:`simulator.mqtt.command_topic` - MQTT output and the
  maintenance-order topic ``{root}/{site}/{machine}/command``.
"""
