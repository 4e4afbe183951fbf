"""Runtime monitoring (runsc's seccheck): trace points in the Sentry streamed to sinks.

points: the catalogue; config: session files; sinks: null and remote (the
wire protocol in wire); session: the one active session; hooks: what the
Sentry calls at each point, free when no session is active.
"""
