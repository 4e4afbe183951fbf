"""Sockets served by the Sentry: AF_UNIX entirely in the Sentry (unix/); AF_INET/AF_INET6 by --network,
a loopback-only stack on the same core (inet/) or host sockets (host.py)."""
