"""Generated protobuf modules for the trace points (sources: the .proto files here; see build.py)."""
