"""AF_INET/AF_INET6 in the Sentry: a loopback-only stack over the AF_UNIX core (`--network=none`)."""
