"""Connectors: processes that read industrial equipment and publish the message contract over MQTT.

``connectors.opcua`` (`forewarn connect opcua`) subscribes to mapped OPC UA nodes and publishes
telemetry for the mapped machines through an on-disk outbox, so a broker outage loses nothing.
"""
