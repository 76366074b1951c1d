"""Sparkplug B ingest: the Tahu protobuf definition, topic/payload decoding, the host state."""
