"""Sockets served by the Sentry: AF_UNIX lives entirely in the Sentry (unix/), never on host sockets."""
